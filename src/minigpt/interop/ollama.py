"""An Ollama ``Modelfile`` next to a GGUF export (``minigpt export --format gguf --ollama``).

``ollama create NAME -f Modelfile`` then serves the model. Ollama's templates are Go
templates, not the Jinja of a chat template, so the chat template (when the tokenizer has
one) is *rendered*, as minigpt renders it for training (``data/chat_template.py``), with Go
placeholders as the message contents: the same text around ``{{ .System }}`` and
``{{ .Prompt }}`` (one turn; Ollama fills in the latest message). Without a chat template the
prompt goes in as it is: plain continuation, like ``minigpt sample``. Stop tokens: those that
end a reply (end of turn, end of text).
"""

from __future__ import annotations

from pathlib import Path

from minigpt.config.sampling import SampleConfig
from minigpt.data.chat_template import render, reply_stop_ids
from minigpt.data.tokenizer import Tokenizer

MODELFILE = "Modelfile"
SYSTEM, PROMPT = "{{ .System }}", "{{ .Prompt }}"


def go_template(template: str) -> str:
    """The Jinja chat template as a one-turn Go template with an optional system prompt."""
    user = {"role": "user", "content": PROMPT}
    with_system = render(template, [{"role": "system", "content": SYSTEM}, user], True)
    without = render(template, [user], True)
    if with_system == without:  # the template ignores system prompts
        return without
    return f"{{{{ if .System }}}}{with_system}{{{{ else }}}}{without}{{{{ end }}}}"


def modelfile(gguf_path: Path, tokenizer: Tokenizer, block_size: int) -> str:
    defaults = SampleConfig()
    template = tokenizer.chat_template
    names = {i: t for t, i in tokenizer.special_tokens.items()}
    stops = [names[i] for i in reply_stop_ids(tokenizer)] if template else []
    if not stops and tokenizer.eot_id is not None:
        stops = [names[tokenizer.eot_id]]
    lines = [
        f"FROM ./{gguf_path.name}",
        f'TEMPLATE """{go_template(template) if template else PROMPT}"""',
        f"PARAMETER num_ctx {block_size}",
        f"PARAMETER temperature {defaults.temperature:g}",
        f"PARAMETER top_k {defaults.top_k}",
        *[f'PARAMETER stop "{stop}"' for stop in stops],
    ]
    return "\n".join(lines) + "\n"
