"""Images in prompts: how they are read, and loading vision-language models.

A request's images sit in its last user turn as chat-template parts (`s1.forcing.request.with_images`).
The transformers backend hands such messages to the model's processor (Qwen2-VL / Qwen2.5-VL), the vLLM
backend to `multi_modal_data`, the OpenAI backend to `image_url` data URLs (`s1.backends.openai.images`).

An image is a file path, an http(s) or `data:` URL, raw bytes, or a PIL image. Reading one that
cannot be read is an error that names the request and the image.
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Any


def load_image(source: Any, field: str = "image", timeout_s: float = 30.0) -> Any:
    """`source` as an RGB PIL image; `field` names it in errors (e.g. "request 'q1': image 0")."""
    from PIL import Image, UnidentifiedImageError

    if hasattr(source, "convert") and hasattr(source, "size"):  # already a PIL image
        return source.convert("RGB") if source.mode != "RGB" else source
    try:
        if isinstance(source, bytes | bytearray):
            data = bytes(source)
        elif isinstance(source, str) and source.startswith("data:"):
            header, _, payload = source.partition(",")
            if ";base64" not in header:
                raise ValueError("only base64 data URLs are supported")
            data = base64.b64decode(payload)
        elif isinstance(source, str) and source.startswith(("http://", "https://")):
            import httpx

            response = httpx.get(source, timeout=timeout_s, follow_redirects=True)
            response.raise_for_status()
            data = response.content
        elif isinstance(source, str | Path):
            path = Path(os.path.expanduser(str(source)))
            if not path.is_file():
                raise ValueError(f"file not found: {source}")
            data = path.read_bytes()
        else:
            raise ValueError(f"expected a path, URL, bytes or PIL image, got {type(source).__name__}")
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise ValueError(f"{field}: cannot read image {_shown(source)}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - e.g. an HTTP error: one message naming the field
        raise ValueError(f"{field}: cannot fetch image {_shown(source)}: {type(exc).__name__}: {exc}") from None
    return image.convert("RGB") if image.mode != "RGB" else image


def _shown(source: Any) -> str:
    if isinstance(source, bytes | bytearray):
        return f"<{len(source)} bytes>"
    text = str(source)
    return repr(text if len(text) <= 80 else text[:77] + "...")


def is_vision_model(model: str, trust_remote_code: bool = False) -> bool:
    """Whether a model's config has a vision tower (Qwen2-VL, Qwen2.5-VL, ...): a local directory's
    config.json, else the Hub config (cached by transformers). Unknown means no."""
    config = Path(os.path.expanduser(model)) / "config.json"
    if config.is_file():
        import json

        try:
            return "vision_config" in json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
    if os.path.exists(os.path.expanduser(model)) or model.endswith(".gguf"):
        return False
    try:
        from transformers import AutoConfig

        return hasattr(AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code), "vision_config")
    except Exception:  # noqa: BLE001 - offline or not a transformers model: the text loader says why
        return False


def load_vision_model(model: str, device: str = "auto", dtype: str = "auto",
                      trust_remote_code: bool = False) -> tuple[Any, Any]:
    """(model, processor) of a vision-language model: `AutoModelForImageTextToText` + `load_processor`."""
    from transformers import AutoModelForImageTextToText

    from s1.backends.loading import resolve_device, resolve_dtype

    dev = resolve_device(device)
    try:
        processor = load_processor(model, trust_remote_code=trust_remote_code)
        net = AutoModelForImageTextToText.from_pretrained(model, dtype=resolve_dtype(dtype, dev),
                                                          trust_remote_code=trust_remote_code)
    except (OSError, ValueError, AttributeError, ImportError) as exc:
        raise ValueError(f"cannot load vision-language model {model!r}: {exc}") from exc
    return net.to(dev), processor


# Qwen2-VL's family: the processor classes whose image-only variant stands in when torchvision is missing
IMAGE_ONLY_PROCESSORS = {"qwen2_vl": "Qwen2VLProcessor", "qwen2_5_vl": "Qwen2_5_VLProcessor"}


def load_processor(model: str, trust_remote_code: bool = False) -> Any:
    """`AutoProcessor`; where it fails because Qwen2-VL's video processor needs torchvision (not
    installable beside a CPU-only torch), the same processor without its video half: the tokenizer,
    the image processor (its PIL backend) and the chat template from the same files. Images work the
    same; videos are not supported then."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(model, trust_remote_code=trust_remote_code)
    except ImportError as exc:
        if "torchvision" not in str(exc).lower():
            raise
        return image_only_processor(model, trust_remote_code=trust_remote_code, cause=exc)


def image_only_processor(model: str, trust_remote_code: bool = False, cause: Exception | None = None) -> Any:
    from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer

    model_type = getattr(AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code), "model_type", "")
    if model_type not in IMAGE_ONLY_PROCESSORS:
        raise ImportError(f"{model}: the processor needs torchvision ({cause}); an image-only stand-in exists for "
                          f"{', '.join(IMAGE_ONLY_PROCESSORS)} only") from cause
    tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
    images = AutoImageProcessor.from_pretrained(model, trust_remote_code=trust_remote_code)
    return _image_only_class(IMAGE_ONLY_PROCESSORS[model_type])(
        image_processor=images, tokenizer=tokenizer, chat_template=_chat_template(model, tokenizer))


def _chat_template(model: str, tokenizer: Any) -> str | None:
    """The processor's chat template (`chat_template.jinja` or `.json` beside the weights), else the
    tokenizer's."""
    import json

    for name in ("chat_template.jinja", "chat_template.json"):
        path = Path(os.path.expanduser(model)) / name
        if not path.is_file():
            try:
                from huggingface_hub import hf_hub_download

                path = Path(hf_hub_download(model, name))
            except Exception:  # noqa: BLE001 - not on the Hub, offline, or not there: try the next source
                continue
        text = path.read_text(encoding="utf-8")
        return text if name.endswith(".jinja") else json.loads(text).get("chat_template")
    return getattr(tokenizer, "chat_template", None)


_IMAGE_ONLY: dict[str, type] = {}


def _image_only_class(name: str) -> type:
    """A subclass of transformers' processor `name` that accepts no video processor and saves what it has
    (image processor, tokenizer, chat template), so a checkpoint written with it loads again."""
    if name not in _IMAGE_ONLY:
        import transformers

        base = getattr(transformers, name)

        def check_argument_for_proper_class(self: Any, argument_name: str, argument: Any) -> Any:
            return None if argument is None else base.check_argument_for_proper_class(self, argument_name, argument)

        def save_pretrained(self: Any, save_directory: str | os.PathLike, **kwargs: Any) -> None:
            self.image_processor.save_pretrained(save_directory)
            self.tokenizer.save_pretrained(save_directory)
            if self.chat_template:
                (Path(save_directory) / "chat_template.jinja").write_text(self.chat_template, encoding="utf-8")

        _IMAGE_ONLY[name] = type(f"ImageOnly{name}", (base,), {
            "check_argument_for_proper_class": check_argument_for_proper_class, "save_pretrained": save_pretrained,
            "__doc__": f"{name} without a video processor (torchvision is not installed)."})
    return _IMAGE_ONLY[name]
