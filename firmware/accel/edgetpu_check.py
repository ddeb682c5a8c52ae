"""A static check of an int8 model against the Edge TPU's published model requirements, without the compiler.

The rules (Coral, "TensorFlow models on the Edge TPU": model requirements and the supported-operations table):

- one subgraph; tensor sizes fixed at compile time (no -1 in a shape signature);
- every tensor quantised to 8 bits (int8/uint8 with a scale), apart from int32 biases and shape operands;
- tensors of more than 3 dimensions may be larger than 1 only in their 3 innermost dimensions (so a batch of 2
  does not map);
- only the operations of the supported table, each with its own limits (same dilation in x and y for
  convolutions, no fused activation on pooling or concatenation, no padding or reduction in the batch dimension,
  a PReLU alpha larger than 1 only in its innermost dimension, …).

The compiler partitions once: the first op that breaks a rule and every op after it in execution order run on
the CPU. `check_edgetpu` reports that first op (index, name and the rule), the ops that would map before it, and
notes for what only the compiler decides (RESIZE_* "depending on input/output size", large RESHAPEs, and
operator versions newer than the compiler knows). It proves a file would not split on the rules written down;
it cannot prove the compiler maps it: scripts/compile_edgetpu.sh does that on an x86 host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from firmware.accel.graph import Graph, tensor_name

# TensorType codes of the schema: 8-bit quantised activations and weights; int32 for biases and shape operands.
INT8_TYPES = {3: "uint8", 9: "int8"}
INT32 = 2
FLOAT_TYPES = {0: "float32", 1: "float16", 16: "float64"}

Rule = Callable[[Graph, Any, Any], str]


def _act(op: Any) -> int:
    return int(getattr(op.builtinOptions, "fusedActivationFunction", 0) or 0)


def _same_dilation(graph: Graph, sg: Any, op: Any) -> str:
    o = op.builtinOptions
    if o is not None and o.dilationHFactor != o.dilationWFactor:
        return f"dilation {o.dilationHFactor}x{o.dilationWFactor} differs in y and x"
    return ""


def _no_fused_activation(graph: Graph, sg: Any, op: Any) -> str:
    return "has a fused activation function" if _act(op) else ""


def _no_batch_padding(graph: Graph, sg: Any, op: Any) -> str:
    pads = graph.constant(sg, op.inputs[1]) if len(op.inputs) > 1 else None
    if pads is None:
        return "paddings are not a constant"
    if pads.ndim == 2 and pads.shape[0] == 4 and np.any(pads[0] != 0):
        return f"pads the batch dimension ({pads[0].tolist()})"
    return ""


def _prelu_alpha(graph: Graph, sg: Any, op: Any) -> str:
    alpha = sg.tensors[op.inputs[1]]
    shape = list(alpha.shape or [])
    if graph.constant(sg, op.inputs[1]) is None:
        return f"alpha {tensor_name(alpha)} is not a constant"
    if any(d != 1 for d in shape[:-1]):
        return f"alpha {tensor_name(alpha)} has shape {shape}: only its innermost dimension may exceed 1"
    return ""


def _no_batch_reduction(graph: Graph, sg: Any, op: Any) -> str:
    axes = graph.constant(sg, op.inputs[1]) if len(op.inputs) > 1 else None
    if axes is None:
        return "reduction axes are not a constant"
    rank = len(sg.tensors[op.inputs[0]].shape or [])
    if any(int(a) % max(rank, 1) == 0 for a in axes.ravel()):
        return "reduces over the batch dimension"
    return ""


def _softmax_1d(graph: Graph, sg: Any, op: Any) -> str:
    shape = [d for d in (sg.tensors[op.inputs[0]].shape or []) if d != 1]
    if len(shape) > 1 or (shape and shape[0] > 16000):
        return f"input {shape} is not a 1-D tensor of at most 16000 elements"
    return ""


def _ok(graph: Graph, sg: Any, op: Any) -> str:
    return ""


# Operation → its rule (an empty string: fine). Names as in LiteRT's BuiltinOperator.
SUPPORTED: dict[str, Rule] = {
    "ADD": _ok, "SUB": _ok, "MUL": _ok, "MAXIMUM": _ok, "MINIMUM": _ok, "SQUARED_DIFFERENCE": _ok,
    "AVERAGE_POOL_2D": _no_fused_activation, "MAX_POOL_2D": _no_fused_activation,
    "CONCATENATION": _no_fused_activation,
    "CONV_2D": _same_dilation, "DEPTHWISE_CONV_2D": _same_dilation, "TRANSPOSE_CONV": _ok,
    "FULLY_CONNECTED": _ok, "L2_NORMALIZATION": _ok, "LOGISTIC": _ok, "TANH": _ok, "RSQRT": _ok,
    "RELU": _ok, "RELU6": _ok, "RELU_N1_TO_1": _ok, "PRELU": _prelu_alpha, "LEAKY_RELU": _ok, "HARD_SWISH": _ok,
    "PAD": _no_batch_padding, "MEAN": _no_batch_reduction, "SUM": _no_batch_reduction,
    "REDUCE_MAX": _no_batch_reduction, "REDUCE_MIN": _no_batch_reduction,
    "RESHAPE": _ok, "SQUEEZE": _ok, "EXPAND_DIMS": _ok, "PACK": _ok, "SPLIT": _ok, "SLICE": _ok,
    "STRIDED_SLICE": _ok, "SPACE_TO_DEPTH": _ok, "DEPTH_TO_SPACE": _ok, "TRANSPOSE": _ok, "GATHER": _ok,
    "RESIZE_BILINEAR": _ok, "RESIZE_NEAREST_NEIGHBOR": _ok, "SOFTMAX": _softmax_1d, "QUANTIZE": _ok,
    "DEQUANTIZE": _ok, "LSTM": _ok, "UNIDIRECTIONAL_SEQUENCE_LSTM": _ok,
}
# Mapped or not by the compiler alone, "depending on input/output size" (Coral's table).
COMPILER_DECIDES = {
    "RESIZE_BILINEAR": "may stay on the CPU depending on its input and output sizes (precision loss)",
    "RESIZE_NEAREST_NEIGHBOR": "may stay on the CPU depending on its input and output sizes",
    "RESHAPE": "certain reshapes of large tensors may not map",
}


@dataclass(frozen=True)
class OpVerdict:
    """The first op that would fall back to the CPU, with the rule it breaks."""

    index: int
    op: str
    reason: str


@dataclass
class EdgeTpuReport:
    """The result for one file: `ok` when every op would map on the written rules."""

    file: str
    ops: int
    mapped: int
    first_cpu_op: OpVerdict | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.first_cpu_op is None and not self.problems

    def summary(self) -> str:
        if self.ok:
            return f"all {self.ops} ops would map to the Edge TPU"
        if self.first_cpu_op is None:
            return "; ".join(self.problems)
        f = self.first_cpu_op
        return (f"would split at op {f.index} {f.op}: {f.reason}; {self.mapped} of {self.ops} ops before it would "
                f"map, it and the {self.ops - f.index - 1} after it would run on the CPU")

    def as_dict(self) -> dict[str, Any]:
        f = self.first_cpu_op
        return {"file": self.file, "ok": self.ok, "ops": self.ops, "mapped": self.mapped,
                "first_cpu_op": None if f is None else {"index": f.index, "op": f.op, "reason": f.reason},
                "problems": self.problems, "notes": self.notes, "summary": self.summary()}


def _tensor_problem(t: Any, constant: bool) -> str:
    """Why one tensor of an op breaks the quantisation or dimension rules, or "" (weights of a convolution are
    4-D by nature: the dimension rule is about activations)."""
    name, shape = tensor_name(t), list(t.shape or [])
    if t.type in FLOAT_TYPES:
        return f"tensor {name} is {FLOAT_TYPES[t.type]}, not 8-bit quantised"
    if t.type in INT8_TYPES and (t.quantization is None or t.quantization.scale is None
                                 or len(t.quantization.scale) == 0):
        return f"tensor {name} is {INT8_TYPES[t.type]} without quantisation parameters"
    if t.type not in INT8_TYPES and t.type != INT32:
        return f"tensor {name} has type code {t.type}, not int8/uint8 (or int32 for biases and shapes)"
    if not constant and len(shape) > 3 and any(d != 1 for d in shape[:-3]):
        return (f"tensor {name} has shape {shape}: beyond 3 dimensions only the 3 innermost may exceed 1 "
                "(a batch larger than 1 does not map)")
    if t.shapeSignature is not None and any(d < 0 for d in t.shapeSignature):
        return f"tensor {name} has a dynamic shape {list(t.shapeSignature)}"
    return ""


def check_graph(graph: Graph, file: str) -> EdgeTpuReport:
    """Walk the ops in execution order and stop at the first that breaks a rule."""
    model = graph.model
    sg = model.subgraphs[0]
    report = EdgeTpuReport(file, len(sg.operators), 0)
    if len(model.subgraphs) != 1:
        report.problems.append(f"{len(model.subgraphs)} subgraphs: the compiler maps only one")
    for i, op in enumerate(sg.operators):
        name = graph.op_name(op)
        rule = SUPPORTED.get(name)
        reason = "not in the Edge TPU's supported operations" if rule is None else rule(graph, sg, op)
        if not reason:
            for idx in [*op.inputs, *op.outputs]:
                if idx >= 0 and (reason := _tensor_problem(sg.tensors[idx], graph.constant(sg, idx) is not None)):
                    break
        if reason:
            report.first_cpu_op = OpVerdict(i, name, reason)
            break
        report.mapped += 1
        if name in COMPILER_DECIDES:
            shapes = [list(sg.tensors[j].shape or []) for j in (op.inputs[0], op.outputs[0])]
            report.notes.append(f"op {i} {name} {shapes[0]} -> {shapes[1]}: {COMPILER_DECIDES[name]}")
    return report


def check_edgetpu(path: Path) -> EdgeTpuReport:
    """Check one model file (see the module docstring)."""
    return check_graph(Graph.read(path), path.name)
