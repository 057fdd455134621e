// rewrite.h — small graph-editing helpers shared by the passes.
#pragma once

#include "sdnn/ir/graph.h"

namespace sdnn::passes {

// Node `n` computes the same data as its input 0 (Identity, a no-op Reshape, a fused Relu's
// consumer side...). Removes it: uses of its output read the input instead. When the output is a
// graph output (whose name the ABI reports), the input's producer takes over the output value
// if nothing else reads the input; otherwise the node becomes a `copy`. Returns true if removed.
bool bypass(ir::Graph& g, ir::Node* n);

// The epilogue name of an activation node kernels can apply ("relu", "relu6"), or "": relu,
// clip(0, 6) and clip(0, +inf).
std::string epilogue_activation(const ir::Node& n);

// When the only reader of `n`'s output (not a graph output) is an activation kernels can apply,
// removes it and makes `n` produce its output with attr epilogue = that activation. Returns
// whether it did.
bool absorb_activation(ir::Graph& g, ir::Node* n);

// `n` (single output) replaces `old` as producer of `v`: used when a consumer is folded into its
// producer (bias Add, activation), so the folded node's output value — and its name — survive.
void move_output(ir::Node* n, ir::Value* v);

// masked-direct (direct_conv.cpp): whether the planes `pad` (a pad_planes node) writes feed a
// conv_direct the pass can run masked — 3x3, stride 1, dilation 1, pads 1, nothing else reading
// the planes, the grid only cropped to H x W (no residual) or read by the next conv's pad_planes
// {width = W} — given that pad's input is an NCHW activation. Returns that conv_direct or null.
ir::Node* maskable_conv(const ir::Graph& g, const ir::Node* pad);

}  // namespace sdnn::passes
