"""``minigpt serve``: an OpenAI-compatible HTTP API with continuous batching, and a web app
(playground, runs dashboard, chat) on the same port. Needs the ``serve`` extra:
``pip install 'minigpt[serve]'``. See docs/serve.md."""
