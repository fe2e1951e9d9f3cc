"""Using a trained model: text generation and streaming (``generate``) and chat (``chat``)."""
