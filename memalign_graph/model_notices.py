"""What to call a judge model in a report, so a demo model is never mistaken for a real judge."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

FAKE_MODEL_NOTICE = "FAKE MODEL: plumbing demo, not a real judge"
LOCAL_MODEL_NOTICE = "LOCAL TINY MODEL (SmolLM2-135M): shows the loop on a real model; it is no judge of quality"
LOCAL_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def model_notice(model: BaseChatModel) -> str | None:
    """The warning a report must carry for this model: the fake one and the tiny local one have one."""
    from memalign_graph.fake_model import FakeChatModel

    if isinstance(model, FakeChatModel):
        return FAKE_MODEL_NOTICE
    if str(getattr(model, "model_path", "") or "").endswith(LOCAL_MODEL_FILE):
        return LOCAL_MODEL_NOTICE
    return None


def describe_model(model: BaseChatModel) -> str:
    """A readable name: the provider's model id when it has one, else the class; a demo model by the name
    that selects it (`fake`, `local`) with its notice."""
    notice = model_notice(model)
    if notice:
        return f"{'fake' if notice == FAKE_MODEL_NOTICE else 'local'} ({notice})"
    for attribute in ("model_name", "model", "model_id"):
        value = getattr(model, attribute, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__
