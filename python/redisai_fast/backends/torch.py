"""TORCH backend: TorchScript modules (`torch.jit.save` bytes), inputs in by DLPack and outputs
out as numpy views of the result tensors, so neither side copies on the CPU."""

from __future__ import annotations

import io
from typing import Any

import torch

from redisai_fast.backends import BackendError, Device, Options, framework_message, gpu_missing

_threads_set = False
HALF_TYPES = (torch.float16, torch.bfloat16)


def set_threads(options: Options) -> None:
    """Framework-wide thread pools (torch allows setting the inter-op pool only once)."""
    global _threads_set
    if _threads_set:
        return
    _threads_set = True
    torch.set_num_threads(options.intra_threads)
    if options.inter_op_parallelism > 0:
        try:
            torch.set_num_interop_threads(options.inter_op_parallelism)
        except RuntimeError:
            pass  # already fixed by earlier torch work in this process


def torch_device(device: Device) -> torch.device:
    if not device.is_gpu:
        return torch.device("cpu")
    found = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device.index >= found:
        raise gpu_missing("TORCH", device, found)
    return torch.device("cuda", device.index)


# torch.from_dlpack's C core: the public wrapper spends as long again checking a producer that is
# always ours (a host tensor, no stream); fall back to it where the private name is missing
_from_capsule = getattr(torch._C, "_from_dlpack", None)


def to_torch(v: Any, dev: torch.device, receiver: str = "model") -> torch.Tensor:
    """A stored tensor as a torch tensor on `dev` (no copy on the CPU); `receiver` names what
    refuses STRING tensors ("model" or "script") in the error."""
    try:
        t = _from_capsule(v.__dlpack__()) if _from_capsule is not None else torch.from_dlpack(v)
    except BufferError as exc:  # the only tensors without DLPack are STRING ones
        raise BackendError(f"ERR STRING tensors cannot be given to a TorchScript {receiver}") from exc
    return t if dev.type == "cpu" else t.to(dev, non_blocking=True)


def to_outputs(result: Any) -> list[Any]:
    """A TorchScript result (tensor, tuple or list of tensors) as host arrays."""
    items = list(result) if isinstance(result, (tuple, list)) else [result]
    out = []
    for t in items:
        if not isinstance(t, torch.Tensor):
            raise BackendError(f"ERR model returned {type(t).__name__}, expected tensors")
        # each check is one cheap attribute; the conversions they guard run only when needed
        if t.requires_grad:
            t = t.detach()
        if not t.is_cpu:
            t = t.to("cpu")
        if t.dtype in HALF_TYPES:
            t = t.float()
        out.append(t.contiguous().numpy())
    return out


def n_outputs(schema: Any) -> int:
    """Output count from the forward signature, counted as RedisAI counts it: a tensor is one, a
    tuple its tensor elements (0: unknown, e.g. a list, whose length only a run tells)."""
    count = 0
    for ret in schema.returns:
        kind = ret.type.kind()
        if kind == "TensorType":
            count += 1
        elif kind == "TupleType":
            count += sum(1 for e in ret.type.elements() if e.kind() == "TensorType")
        else:
            return 0
    return count


def no_grad_on_this_thread() -> None:
    """Runs never need autograd: switch it off once per thread (grad mode is thread-local), which
    costs less per run than entering `torch.inference_mode()` every time."""
    if torch.is_grad_enabled():
        torch.set_grad_enabled(False)


class TorchModel:
    def __init__(self, module: torch.jit.ScriptModule, dev: torch.device) -> None:
        self.module = module
        # called directly: a ScriptModule has no Python hooks for nn.Module.__call__ to run
        self.forward = module.forward
        self.dev = dev
        schema = module.forward.schema
        self.input_names = [a.name for a in schema.arguments[1:]]
        # TorchScript outputs have no names: RedisAI lists one "" per output (AI.MODELGET META)
        self.output_names = [""] * n_outputs(schema)
        # on the CPU the server calls these itself, with no Python frame per run: forward, the
        # DLPack import, autograd off for the calling thread (once), the output conversion for
        # results its own quick one does not take (not tensors, non-contiguous, half, autograd),
        # and the error a run raises as the reply it becomes; `run` below does the same
        self.direct = (
            (self.forward, _from_capsule, no_grad_on_this_thread, to_outputs, run_error)
            if dev.type == "cpu" and _from_capsule is not None
            else None
        )

    def run(self, inputs: list[Any]) -> list[Any]:
        try:
            no_grad_on_this_thread()
            return to_outputs(self.forward(*[to_torch(v, self.dev) for v in inputs]))
        except BackendError:
            raise
        except Exception as exc:  # TorchScript raises RuntimeError subclasses with long traces
            raise run_error(exc) from exc


def run_error(exc: BaseException) -> BackendError:
    """What a failed run answers: our own BackendError as is, else torch's text as RedisAI relays it."""
    return exc if isinstance(exc, BackendError) else BackendError(framework_message(exc), verbatim=True)


class TorchBackend:
    name = "TORCH"

    def __init__(self, options: Options) -> None:
        self.options = options
        set_threads(options)

    def version(self) -> str:
        return torch.__version__

    def load(self, blob: Any, device: Device, inputs: list[str], outputs: list[str]) -> TorchModel:
        dev = torch_device(device)
        try:
            module = torch.jit.load(io.BytesIO(bytes(blob)), map_location=dev)
        except Exception as exc:  # torch raises RuntimeError for anything that is not TorchScript
            msg = framework_message(exc)  # torch's own text, as RedisAI relays it
            if "version" in msg.lower() and ("newer" in msg.lower() or "supported" in msg.lower()):
                msg += f" (the model was saved by a newer PyTorch than the installed {torch.__version__})"
            raise BackendError(msg, verbatim=True) from exc
        module.eval()
        return TorchModel(module, dev)


def create(options: Options) -> TorchBackend:
    return TorchBackend(options)
