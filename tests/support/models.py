"""Small deterministic models for the tests, generated here from the frameworks (nothing is
downloaded). Each builder returns the serialized blob a client would send to AI.MODELSTORE.
Frameworks are imported inside the builders so importing this module is cheap."""

from __future__ import annotations

import io
import itertools
from functools import lru_cache

import numpy as np

# y = x @ W + b with these weights (ONNX and Torch linear models share them)
LIN_W = (np.arange(12, dtype=np.float32).reshape(4, 3) / 10).astype(np.float32)
LIN_B = np.array([1, 2, 3], dtype=np.float32)


def linear_expected(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) @ LIN_W + LIN_B


# ---------------------------------------------------------------- ONNX (onnx.helper)

def _onnx_model(nodes, inputs, outputs, initializers=(), opset: int = 13, ir_version: int = 8) -> bytes:
    from onnx import helper

    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir_version
    return m.SerializeToString()


@lru_cache
def onnx_linear() -> bytes:
    """x: float[N,4] -> y: float[N,3]."""
    from onnx import TensorProto, helper

    return _onnx_model(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor("W", TensorProto.FLOAT, [4, 3], LIN_W.ravel()), helper.make_tensor("b", TensorProto.FLOAT, [3], LIN_B)],
    )


@lru_cache
def onnx_two_in_two_out() -> bytes:
    """a, b: float[N,2] -> sum = a + b, prod = a * b."""
    from onnx import TensorProto, helper

    vi = helper.make_tensor_value_info
    return _onnx_model(
        [helper.make_node("Add", ["a", "b"], ["sum"]), helper.make_node("Mul", ["a", "b"], ["prod"])],
        [vi("a", TensorProto.FLOAT, ["N", 2]), vi("b", TensorProto.FLOAT, ["N", 2])],
        [vi("sum", TensorProto.FLOAT, ["N", 2]), vi("prod", TensorProto.FLOAT, ["N", 2])],
    )


@lru_cache
def onnx_scale(factor: float) -> bytes:
    """x: float[N] -> y = x * factor (models that differ only in what they compute)."""
    from onnx import TensorProto, helper

    vi = helper.make_tensor_value_info
    return _onnx_model(
        [helper.make_node("Mul", ["x", "f"], ["y"])],
        [vi("x", TensorProto.FLOAT, ["N"])],
        [vi("y", TensorProto.FLOAT, ["N"])],
        [helper.make_tensor("f", TensorProto.FLOAT, [1], [factor])],
    )


@lru_cache
def onnx_batch_reporter() -> bytes:
    """x: float[N,2] -> n: float[N,1], every element = N (the batch size the model saw)."""
    from onnx import TensorProto, helper

    vi = helper.make_tensor_value_info
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["n_i"], axis=0),
        helper.make_node("Cast", ["n_i"], ["n_f"], to=TensorProto.FLOAT),
        helper.make_node("Concat", ["n_i1", "one"], ["out_shape"], axis=0),
        helper.make_node("Unsqueeze", ["n_i", "axes0"], ["n_i1"]),
        helper.make_node("Expand", ["n_f", "out_shape"], ["n"]),
    ]
    # topological order for onnx: Unsqueeze must come before Concat
    nodes = [nodes[0], nodes[1], nodes[2], nodes[4], nodes[3], nodes[5]]
    inits = [
        helper.make_tensor("zero", TensorProto.INT64, [], [0]),
        helper.make_tensor("one", TensorProto.INT64, [1], [1]),
        helper.make_tensor("axes0", TensorProto.INT64, [1], [0]),
    ]
    return _onnx_model(nodes, [vi("x", TensorProto.FLOAT, ["N", 2])], [vi("n", TensorProto.FLOAT, ["N", 1])], inits)


def onnx_big(megabytes: int) -> bytes:
    """A linear model carrying a large initializer (slow to load)."""
    from onnx import TensorProto, helper, numpy_helper

    n = megabytes * 1024 * 1024 // 4
    big = numpy_helper.from_array(np.ones(n, dtype=np.float32), "big")
    vi = helper.make_tensor_value_info
    return _onnx_model(
        [helper.make_node("ReduceSum", ["big"], ["s"], keepdims=0), helper.make_node("Add", ["x", "s"], ["y"])],
        [vi("x", TensorProto.FLOAT, [1])],
        [vi("y", TensorProto.FLOAT, [1])],
        [big],
    )


@lru_cache
def onnx_string_identity() -> bytes:
    """s: string[N] -> t = s (a model with STRING tensors, which onnxruntime's Python binding runs)."""
    from onnx import TensorProto, helper

    vi = helper.make_tensor_value_info
    return _onnx_model([helper.make_node("Identity", ["s"], ["t"])], [vi("s", TensorProto.STRING, ["N"])],
                       [vi("t", TensorProto.STRING, ["N"])])


@lru_cache
def onnx_endless() -> bytes:
    """x: float[1] -> y: a Loop of 2^62 additions, which only the execution timeout ends."""
    from onnx import TensorProto, helper

    vi = helper.make_tensor_value_info
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["v_in", "one"], ["v_out"])],
        "body",
        [vi("i", TensorProto.INT64, []), vi("cond_in", TensorProto.BOOL, []), vi("v_in", TensorProto.FLOAT, [1])],
        [vi("cond_out", TensorProto.BOOL, []), vi("v_out", TensorProto.FLOAT, [1])],
        initializer=[helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])],
    )
    return _onnx_model(
        [helper.make_node("Loop", ["trips", "cond", "x"], ["y"], body=body)],
        [vi("x", TensorProto.FLOAT, [1])],
        [vi("y", TensorProto.FLOAT, [1])],
        [helper.make_tensor("trips", TensorProto.INT64, [], [2**62]), helper.make_tensor("cond", TensorProto.BOOL, [], [True])],
    )


@lru_cache
def onnx_expand(n: int) -> bytes:
    """x: float[1] -> y: float[n], every element x (a large output from a small input)."""
    from onnx import TensorProto, helper

    vi = helper.make_tensor_value_info
    return _onnx_model([helper.make_node("Expand", ["x", "shape"], ["y"])], [vi("x", TensorProto.FLOAT, [1])],
                       [vi("y", TensorProto.FLOAT, [n])], [helper.make_tensor("shape", TensorProto.INT64, [1], [n])])


def onnx_future_ir() -> bytes:
    """The linear model stamped with an IR version newer than any onnxruntime reads."""
    from onnx import TensorProto, helper

    return _onnx_model(
        [helper.make_node("Identity", ["x"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        ir_version=99,
    )


# ---------------------------------------------------------------- TorchScript

def torch_bytes(module) -> bytes:
    """A scripted module as the bytes AI.MODELSTORE takes (a plain nn.Module is scripted first)."""
    import torch

    if not isinstance(module, torch.jit.ScriptModule):
        module = torch.jit.script(module)
    buf = io.BytesIO()
    torch.jit.save(module, buf)
    return buf.getvalue()


def torch_mlp(sizes: tuple[int, ...], seed: int) -> bytes:
    """A TorchScript MLP: Linear layers of `sizes` with ReLU between them, weights from `seed`."""
    import torch

    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch_bytes(torch.nn.Sequential(*layers).eval())


@lru_cache
def torch_linear() -> bytes:
    import torch

    class Lin(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.from_numpy(LIN_W.copy()), requires_grad=False)
            self.b = torch.nn.Parameter(torch.from_numpy(LIN_B.copy()), requires_grad=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ self.w + self.b

    return torch_bytes(torch.jit.script(Lin()))


@lru_cache
def torch_two_in_two_out() -> bytes:
    import torch

    class Two(torch.nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor):
            return a + b, a * b

    return torch_bytes(torch.jit.script(Two()))


@lru_cache
def torch_batch_reporter() -> bytes:
    import torch

    class Rep(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.full((x.shape[0], 1), float(x.shape[0]))

    return torch_bytes(torch.jit.script(Rep()))


@lru_cache
def torch_slow() -> bytes:
    """x: float[N,64], n: int64[1] -> x after n rounds of a 64x64 matmul (time grows with n)."""
    import torch

    class Slow(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.eye(64) * 0.5, requires_grad=False)

        def forward(self, x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
            for _ in range(int(n[0].item())):
                x = torch.tanh(x @ self.w)
            return x

    return torch_bytes(torch.jit.script(Slow()))


@lru_cache
def torch_wrong_batch() -> bytes:
    """Ignores the batch: always returns one row (batched runs must detect it)."""
    import torch

    class Bad(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:1] * 2

    return torch_bytes(torch.jit.script(Bad()))


@lru_cache
def torch_format_v1_sum() -> bytes:
    """x, y -> x + y as a TorchScript archive of file format version 1, the layout torch 1.x wrote
    (`op_version_set = 1` code, the module object as a protocol-2 pickle, no tensors)."""
    import zipfile

    code = (
        "op_version_set = 1\nclass Sum2(Module):\n  __parameters__ = []\n  training : bool\n"
        "  def forward(self: __torch__.Sum2,\n    x: Tensor,\n    y: Tensor) -> Tensor:\n"
        "    return torch.add(x, y, alpha=1)\n"
    )
    # pickle of the module: GLOBAL __torch__.Sum2, NEWOBJ, BUILD {"training": True}
    data = b"\x80\x02c__torch__\nSum2\nq\x00)\x81}(X\x08\x00\x00\x00trainingq\x01\x88ubq\x02."
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:  # torch reads stored (uncompressed) records
        z.writestr("sum2/version", "1\n")
        z.writestr("sum2/code/__torch__.py", code)
        z.writestr("sum2/data.pkl", data)
        z.writestr("sum2/constants.pkl", b"\x80\x02).")  # pickle of ()
    return buf.getvalue()


# ---------------------------------------------------------------- TensorFlow (frozen GraphDef)

@lru_cache
def tf_mul() -> bytes:
    """RedisAI's classic graph: inputs a, b (float[2]) -> c = a * b (node "mul"), also "c"."""
    import tensorflow as tf

    g = tf.Graph()
    with g.as_default():
        a = tf.compat.v1.placeholder(tf.float32, shape=[None], name="a")
        b = tf.compat.v1.placeholder(tf.float32, shape=[None], name="b")
        c = tf.multiply(a, b, name="mul")
        tf.identity(c, name="c")
    return g.as_graph_def().SerializeToString()


@lru_cache
def tf_mul_2d() -> bytes:
    """Like tf_mul, for float[2,2] inputs (the script example multiplies 2x2 tensors)."""
    import tensorflow as tf

    g = tf.Graph()
    with g.as_default():
        a = tf.compat.v1.placeholder(tf.float32, shape=[None, 2], name="a")
        b = tf.compat.v1.placeholder(tf.float32, shape=[None, 2], name="b")
        tf.multiply(a, b, name="mul")
    return g.as_graph_def().SerializeToString()


@lru_cache
def tf_linear() -> bytes:
    """x: float[N,4] -> y (node "y") = x @ W + b."""
    import tensorflow as tf

    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, shape=[None, 4], name="x")
        w = tf.constant(LIN_W)
        b = tf.constant(LIN_B)
        tf.add(tf.matmul(x, w), b, name="y")
    return g.as_graph_def().SerializeToString()


@lru_cache
def tf1_graph_producer_0() -> bytes:
    """a, b (float) -> mul = a * b, written the way TensorFlow 1 wrote frozen graphs: GraphDef
    producer version 0, placeholders without a shape attribute (RedisAI's classic graph.pb)."""
    import tensorflow as tf

    tf1 = tf.compat.v1
    float_type = tf1.AttrValue(type=tf.float32.as_datatype_enum)
    g = tf1.GraphDef()
    g.node.extend([
        tf1.NodeDef(name="a", op="Placeholder", attr={"dtype": float_type}),
        tf1.NodeDef(name="b", op="Placeholder", attr={"dtype": float_type}),
        tf1.NodeDef(name="mul", op="Mul", input=["a", "b"], attr={"T": float_type}),
    ])
    g.versions.producer = 0
    return g.SerializeToString()


# ---------------------------------------------------------------- TFLite (TF converter)

@lru_cache
def tflite_linear() -> bytes:
    """x: float[1,4] -> y = x @ W + b, converted by tf.lite.TFLiteConverter."""
    import tensorflow as tf

    w = tf.constant(LIN_W)
    b = tf.constant(LIN_B)

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
    def f(x):
        return tf.matmul(x, w) + b

    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    return conv.convert()


@lru_cache
def tflite_two_in_two_out() -> bytes:
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([2], tf.float32, name="a"), tf.TensorSpec([2], tf.float32, name="b")])
    def f(a, b):
        return a + b, a * b

    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    return conv.convert()


# ---------------------------------------------------------------- the image-classification pipeline

IMAGENET_SCRIPT = """
def pre_process_3ch(image):
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    temp = image.float().div(255).unsqueeze(0)
    return temp.permute(0, 3, 1, 2).sub(mean).div(std)

def post_process(output):
    return output.max(1)[1]
"""

IMAGENET_CLASS = 111


@lru_cache
def torch_classifier() -> bytes:
    """[N,3,224,224] -> [N,1000] logits: channel means through a linear layer whose weights make
    class 111 win for any image brighter than the normalisation mean."""
    import torch

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = torch.zeros(1000, 3)
            w[IMAGENET_CLASS] = 1.0
            self.fc = torch.nn.Linear(3, 1000)
            with torch.no_grad():
                self.fc.weight.copy_(w)
                self.fc.bias.zero_()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.mean(dim=(2, 3)))

    return torch_bytes(torch.jit.script(Classifier()))


def image_224() -> bytes:
    """A deterministic bright UINT8 224x224x3 image."""
    rng = np.random.default_rng(5)
    return rng.integers(180, 256, size=(224, 224, 3), dtype=np.uint8).tobytes()
