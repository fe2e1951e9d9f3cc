"""An Ollama ``Modelfile`` next to a GGUF export (``minigpt export --format gguf --ollama``).

``ollama create NAME -f Modelfile`` then serves the model. Ollama's templates are Go
templates, not the Jinja of a chat template, so the chat template (when the tokenizer has
one) is *rendered* by Jinja with Go placeholders as the message contents: what comes out is
the same text around ``{{ .System }}`` and ``{{ .Prompt }}`` (one turn; Ollama fills in the
latest message). Without a chat template the prompt goes in as it is: plain continuation,
like ``minigpt sample``. Stop tokens: the end-of-text token and the special tokens the
template writes.
"""

from __future__ import annotations

from pathlib import Path

from minigpt.config.sampling import SampleConfig
from minigpt.data.tokenizer import Tokenizer
from minigpt.errors import MiniGPTError

MODELFILE = "Modelfile"


def render_go_template(template: str) -> str:
    """The Jinja chat template as a one-turn Go template with an optional system prompt."""
    try:
        import jinja2
    except ImportError:
        raise MiniGPTError("writing a Modelfile from a chat template needs jinja2") from None
    env = jinja2.Environment(undefined=jinja2.ChainableUndefined, keep_trailing_newline=True)
    try:
        compiled = env.from_string(template)

        def render(messages: list[dict[str, str]]) -> str:
            return compiled.render(messages=messages, add_generation_prompt=True)

        user = {"role": "user", "content": "{{ .Prompt }}"}
        with_system = render([{"role": "system", "content": "{{ .System }}"}, user])
        without = render([user])
    except jinja2.TemplateError as e:
        raise MiniGPTError(f"the chat template does not render ({e})") from None
    if with_system == without:  # the template ignores system prompts
        return without
    return f"{{{{ if .System }}}}{with_system}{{{{ else }}}}{without}{{{{ end }}}}"


def modelfile(gguf_path: Path, tokenizer: Tokenizer, block_size: int, template: str | None) -> str:
    defaults = SampleConfig()
    go = render_go_template(template) if template else "{{ .Prompt }}"
    specials = tokenizer.special_tokens
    stops = [t for t, i in specials.items() if i == tokenizer.eot_id or (template and t in go)]
    lines = [
        f"FROM ./{gguf_path.name}",
        f'TEMPLATE """{go}"""',
        f"PARAMETER num_ctx {block_size}",
        f"PARAMETER temperature {defaults.temperature:g}",
        f"PARAMETER top_k {defaults.top_k}",
        *[f'PARAMETER stop "{stop}"' for stop in sorted(set(stops))],
    ]
    return "\n".join(lines) + "\n"
