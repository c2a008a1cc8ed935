"""Script writers: the built-in templates, or a language model behind an OpenAI-compatible API.

``ScriptWriter`` is the small protocol the studio calls. :class:`TemplateWriter` works offline;
:class:`ChatWriter` asks any OpenAI-compatible ``/v1/chat/completions`` endpoint (OpenAI, Azure,
vLLM, Ollama, OpenRouter…) for JSON and checks what comes back against the same shape the
templates produce, so a model that answers badly is caught here instead of reaching a video
model. The OpenAI SDK is not a dependency; the request and response follow the documented wire
shape (``choices[0].message.content``, ``response_format: {"type": "json_object"}``).
"""

from __future__ import annotations

import base64
import json
from typing import Any, Literal, Protocol

import httpx
import msgspec

from backend.commerce.studio_schemas import Beat, Script
from backend.commerce.studio_templates import ProductFacts, Structure, base_language, write_scripts
from backend.settings import Settings


class ChatError(Exception):
    """The chat model did not give a usable answer; the message says why."""


class WriterError(ChatError):
    """The writer could not produce usable scripts; the message says why."""


class ScriptWriter(Protocol):
    name: str

    async def write(
        self,
        product: ProductFacts,
        *,
        goal: str,
        style: str,
        language: str,
        variants: int,
        seconds: int,
        structure: Structure | None,
    ) -> list[Script]: ...

    async def aclose(self) -> None: ...


class TemplateWriter:
    name = "template"

    async def write(
        self,
        product: ProductFacts,
        *,
        goal: str,
        style: str,
        language: str,
        variants: int,
        seconds: int,
        structure: Structure | None,
    ) -> list[Script]:
        return write_scripts(
            product,
            goal=goal,
            style=style,
            language=language,
            variants=variants,
            seconds=seconds,
            structure=structure,
        )

    async def aclose(self) -> None:
        return None


class ChatClient:
    """One OpenAI-compatible chat completion that must answer with a JSON object."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = http or httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s
        )

    async def json_answer(self, system: str, user: str | list[dict[str, Any]]) -> Any:
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "response_format": {"type": "json_object"},
            "temperature": 0.7,
        }
        try:
            response = await self._http.post("/v1/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise ChatError(f"the model service did not answer: {exc.__class__.__name__}") from exc
        if response.status_code != 200:
            raise ChatError(f"the model service answered {response.status_code}")
        try:
            choice = response.json()["choices"][0]
            content = choice["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ChatError("the model service sent an unreadable answer") from exc
        if choice.get("finish_reason") == "length":
            raise ChatError("the model's answer was cut off")
        if not isinstance(content, str):
            raise ChatError("the model sent no text")
        try:
            return json.loads(content)
        except ValueError as exc:
            raise ChatError("the model's answer is not JSON") from exc

    async def aclose(self) -> None:
        await self._http.aclose()


def image_part(data: bytes, content_type: str) -> dict[str, Any]:
    """A chat content part carrying an image inline (a data URL), as vision models take it."""
    encoded = base64.b64encode(data).decode()
    url = f"data:{content_type};base64,{encoded}"
    return {"type": "image_url", "image_url": {"url": url, "detail": "low"}}


class _Beat(msgspec.Struct, forbid_unknown_fields=False):
    kind: Literal["hook", "demo", "point", "cta"]
    start_s: float
    end_s: float
    visual: str
    voice_over: str
    on_screen_text: str = ""


class _Script(msgspec.Struct, forbid_unknown_fields=False):
    hook: str
    demo: str
    selling_points: list[str]
    call_to_action: str
    beats: list[_Beat]


class _Answer(msgspec.Struct, forbid_unknown_fields=False):
    scripts: list[_Script]


_SYSTEM = """You write scripts for short vertical marketing videos of a product.
Answer with one JSON object: {"scripts": [SCRIPT, ...]} with exactly the number of scripts asked for.
SCRIPT = {"hook": str, "demo": str, "selling_points": [str], "call_to_action": str,
          "beats": [{"kind": "hook"|"demo"|"point"|"cta", "start_s": number, "end_s": number,
                     "visual": str, "voice_over": str, "on_screen_text": str}]}
Beats run in order from 0 to the clip's length without gaps: the first is the hook, the last the
call to action. "visual" directs the video model, in English. hook, demo, selling_points,
call_to_action, voice_over and on_screen_text are in the requested language. Each beat's voice-over
must be speakable in its time. Use only facts given about the product; never invent claims."""


class ChatWriter:
    """Scripts from a language model; checked, then shaped like the templates' scripts."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self.name = f"llm:{client.model}"

    async def write(
        self,
        product: ProductFacts,
        *,
        goal: str,
        style: str,
        language: str,
        variants: int,
        seconds: int,
        structure: Structure | None,
    ) -> list[Script]:
        brief: dict[str, Any] = {
            "product": {
                "title": product.title,
                "description": product.description,
                "brand": product.brand,
                "price_minor": product.price_minor,
                "currency": product.currency,
            },
            "goal": goal,
            "style": style,
            "language": language,
            "scripts": variants,
            "seconds": seconds,
        }
        if structure is not None:
            brief["follow_structure"] = {
                "beat_count": len(structure.beat_fractions),
                "beat_time_shares": [round(f, 3) for f in structure.beat_fractions],
                "hook_is_a_question": structure.question_hook,
            }
        raw = await self.client.json_answer(_SYSTEM, json.dumps(brief, ensure_ascii=False))
        try:
            answer = msgspec.convert(raw, _Answer)
        except msgspec.ValidationError as exc:
            raise WriterError(f"the model's scripts do not have the expected shape: {exc}") from exc
        lang = base_language(language)
        if len(answer.scripts) < variants:
            raise WriterError(f"the model wrote {len(answer.scripts)} scripts, not {variants}")
        return [
            _checked(s, variant=i + 1, language=lang, style=style, goal=goal, seconds=seconds)
            for i, s in enumerate(answer.scripts[:variants])
        ]

    async def aclose(self) -> None:
        await self.client.aclose()


def _checked(script: _Script, *, variant: int, language: str, style: str, goal: str, seconds: int) -> Script:
    beats = script.beats
    if len(beats) < 2 or beats[0].kind != "hook" or beats[-1].kind != "cta":
        raise WriterError("a script must open with a hook and end with a call to action")
    start = 0.0
    out = []
    for i, beat in enumerate(beats):
        end = float(seconds) if i == len(beats) - 1 else beat.end_s
        # Small drift is normal (a model rounds); gaps, overlaps or time past the end are not.
        if abs(beat.start_s - start) > 0.25 or not start < end <= seconds + 0.25:
            raise WriterError(f"beat {i + 1} does not fit the clip's {seconds} seconds")
        if not beat.voice_over.strip() or not beat.visual.strip():
            raise WriterError(f"beat {i + 1} has no voice-over or no visual")
        out.append(
            Beat(
                kind=beat.kind,
                start_s=round(start, 2),
                end_s=round(min(end, seconds), 2),
                visual=beat.visual.strip()[:300],
                voice_over=beat.voice_over.strip()[:300],
                on_screen_text=beat.on_screen_text.strip()[:60],
            )
        )
        start = min(end, seconds)
    return Script(
        variant=variant,
        language=language,
        style=style,
        goal=goal,
        hook=script.hook.strip()[:300],
        demo=script.demo.strip()[:300],
        selling_points=[p.strip()[:200] for p in script.selling_points if p.strip()][:6],
        call_to_action=script.call_to_action.strip()[:200],
        beats=out,
        voice_over=" ".join(b.voice_over for b in out),
    )


def build_writer(settings: Settings) -> ScriptWriter:
    """The writer the settings ask for (``RIFFLE_STUDIO_WRITER``)."""
    if settings.studio_writer == "llm":
        return ChatWriter(
            ChatClient(
                base_url=settings.studio_llm_base_url,
                api_key=settings.studio_llm_api_key,
                model=settings.studio_llm_model,
            )
        )
    return TemplateWriter()
