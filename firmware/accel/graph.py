"""Reading and editing a model's flatbuffer graph: its ops in execution order, and rewriting the batch size.

`set_batch` changes only shapes (the activation tensors' leading dimension and the one RESHAPE target that
names it); weights, quantisation parameters and op order are untouched, so each example's result is the same as
before. It is how the embedder went from batch 2 (face and mirror in one invoke) to batch 1 without being
quantised again (scripts/build_models.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from firmware.errors import ModelError


def _schema() -> tuple[Any, Any]:
    """(schema module, flatbuffer_utils) from the LiteRT wheel, imported lazily like the interpreter."""
    try:
        from ai_edge_litert import schema_py_generated as schema
        from ai_edge_litert.tools import flatbuffer_utils as fb
    except ImportError as exc:
        raise ModelError("reading a model graph needs ai-edge-litert (schema_py_generated)") from exc
    return schema, fb


def op_names() -> dict[int, str]:
    """Builtin operator code → its name (CONV_2D, PRELU, …)."""
    schema, _ = _schema()
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


@dataclass(frozen=True)
class Graph:
    """A model's object tree (flatbuffer_utils' `ModelT`) with the helpers the checks need."""

    model: Any

    @classmethod
    def read(cls, path: Path) -> Graph:
        return cls.from_bytes(path.read_bytes(), str(path))

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "model") -> Graph:
        _, fb = _schema()
        try:
            return cls(fb.read_model_from_bytearray(bytearray(data)))
        except Exception as exc:  # noqa: BLE001 (the flatbuffer reader raises anything on a bad file)
            raise ModelError(f"{name} is not a LiteRT flatbuffer: {exc}") from exc

    def to_bytes(self) -> bytes:
        _, fb = _schema()
        return bytes(fb.convert_object_to_bytearray(self.model))

    def op_name(self, op: Any) -> str:
        code = self.model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = op_names().get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            return f"CUSTOM({custom})"
        return name

    def constant(self, sg: Any, index: int) -> np.ndarray | None:
        """A tensor's constant value (None for activations), in its stored type and shape."""
        t = sg.tensors[index]
        data = self.model.buffers[t.buffer].data
        if data is None or len(data) == 0:
            return None
        dtype = {0: "<f4", 1: "<f2", 2: "<i4", 3: "u1", 4: "<i8", 9: "i1", 7: "<i2"}.get(t.type)
        if dtype is None:
            return None
        return np.frombuffer(bytes(bytearray(data)), dtype).reshape(list(t.shape) if t.shape is not None else [-1])


def tensor_name(t: Any) -> str:
    return t.name.decode() if isinstance(t.name, bytes) else str(t.name)


def set_batch(data: bytes, batch: int) -> bytes:
    """The same model with its batch dimension set to `batch`: every activation tensor (not a constant) whose
    leading dimension is the current batch, and the RESHAPE targets that spell it out.

    The current batch is the first input's leading dimension. Constants (weights; a depthwise kernel leads with
    1) are left alone. Meant for models whose every activation carries the batch first, as MobileFaceNet's do;
    the embedder test compares each face's embedding before and after.
    """
    graph = Graph.from_bytes(data)
    model = graph.model
    if len(model.subgraphs) != 1:
        raise ModelError(f"set_batch handles one subgraph, this model has {len(model.subgraphs)}")
    sg = model.subgraphs[0]
    old = int(sg.tensors[sg.inputs[0]].shape[0])
    if old == batch:
        return data
    for op in sg.operators:
        if graph.op_name(op) == "RESHAPE":
            if op.builtinOptions is not None and op.builtinOptions.newShape is not None:
                shape = list(op.builtinOptions.newShape)
                if shape and shape[0] == old:
                    op.builtinOptions.newShape = [batch, *shape[1:]]
            if len(op.inputs) > 1 and op.inputs[1] >= 0:
                target = sg.tensors[op.inputs[1]]
                value = graph.constant(sg, op.inputs[1])
                if value is not None and value.size and int(value[0]) == old:
                    value = value.astype("<i4").copy()
                    value[0] = batch
                    model.buffers[target.buffer].data = np.frombuffer(value.tobytes(), np.uint8)
    for index, t in enumerate(sg.tensors):
        if t.shape is None or len(t.shape) < 2 or int(t.shape[0]) != old or graph.constant(sg, index) is not None:
            continue
        t.shape = [batch, *list(t.shape)[1:]]
        if t.shapeSignature is not None and len(t.shapeSignature) and t.shapeSignature[0] == old:
            t.shapeSignature = [batch, *list(t.shapeSignature)[1:]]
    model.signatureDefs = None
    return graph.to_bytes()
