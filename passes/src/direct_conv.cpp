// direct_conv.cpp — a KxK convolution with sparse weights becomes a direct sparse convolution:
// the kernel reads shifted windows of zero-padded input planes instead of im2col's columns.
//
//   %c = im2col(%x) {kernel, strides, pads, dilations}; %y = conv1x1(%c, %w, %b) {kernel = sparse}
//     ->
//   %p = pad_planes(%x) {pads, strides, plane_rows, plane_cols}       : [B, C*Sh*Sw, R, Wq] row
//   %g = conv_direct(%p, %w, %b) {kernel, strides, dilations, ...}    : [B, M, Ho, Wq] cb
//   %y = crop(%g)                                                      : [B, M, Ho, Wo] cb
//
// pad_planes splits the padded input (Hp x Wp) into Sh * Sw phase planes per channel (space to
// depth), each Wq = ceil(Wp / Sw) columns wide, so that output (oy, ox)'s tap (c, ky, kx) is plane
// (c, (ky*dh) % Sh, (kx*dw) % Sw) at row oy + (ky*dh) / Sh, column ox + (kx*dw) / Sw: a shifted,
// unit-stride window. The kernel computes every column of the Ho x Wq output grid (n = oy*Wq + ox;
// columns ox >= Wo are discarded by crop), so B row k for the chunk at column n is one vector at
// plane(k) + shift(k) + n: an immediate displacement, as for the blocked SpMM. R leaves room for
// the reads of the padded grid's last vector. Dense weights keep im2col (the dense kernel reads
// blocked B only) except on a first layer's few input channels (at most kDenseDirectChannels:
// an RGB image): there im2col writes K*K copies of a small input, and the pattern kernel with
// every weight in its pattern (kernel = sparse, sparsity 0) is a direct dense convolution. 1x1
// windows (strided 1x1 convs, ResNet's downsampling shortcuts) need no planes: their im2col is a
// subsampling copy. When its input comes ChannelBlocked (from a conv1x1 or a crop) it becomes a
// strided crop, which copies block to block; im2col would read NCHW, and the layout conversion
// before it cost more than the copy itself (ResNet-50: 1.2 ms of unpack + im2col):
//   %c = im2col(%x : cb) {kernel = [1, 1], pads = 0, strides}  ->  %c = crop(%x) {strides}
// With AVX-512 a 3-wide, stride-2 max pool reading a crop (a ResNet stem's) reads the grid itself
// ({width = Wo}) and the crop goes; so does a 3x3, stride-1, pads-1 depthwise conv (a MobileNet
// stem's) when Wo is a multiple of the vector (each output block within one row of the grid).
// When a crop's only reader is the next direct convolution's pad_planes, the crop goes: with
// stride 1 and the same row width the kernel writes that pad_planes' planes itself
// ({planes_out = [pad_top, pad_left, H, W]}: grid shifted by the pads, a zero_borders step
// clearing the pad columns the grid's extra columns land on); otherwise pad_planes reads the grid
// ({width = Wo}: the grid's first Wo columns of each row are data). A residual block's Add that
// reads a crop (and the activation after it) joins the crop, which adds the residual while it
// copies ({epilogue}: %y = crop(%g, %r) = act(crop(%g) + %r)): one pass over the block's output
// instead of three. Runs after choose-kernels; `vector_floats` sizes R.
// The second pass here, masked-direct (after choose-layout, AVX-512), removes pad_planes and crop
// again around the 3x3 stride-1 convs whose input turned out NCHW (see MaskedDirect below).
#include <algorithm>

#include "rewrite.h"
#include "sdnn/ir/error.h"
#include "sdnn/passes/pass.h"

namespace sdnn::passes {
namespace {

constexpr int64_t kDenseDirectChannels = 4;

using ir::Node;
using ir::Value;

class DirectConv : public Pass {
 public:
  explicit DirectConv(int64_t vl) : vl_(vl) {}
  const char* name() const override { return "direct-conv"; }

  bool run(ir::Graph& g) override {
    bool changed = false;
    std::vector<Node*> work;
    for (const auto& n : g.nodes()) work.push_back(n.get());
    for (Node* n : work) {
      if (n->op != "conv1x1") continue;
      if (n->inputs.size() > 3 && n->inputs[3]) continue;  // a residual epilogue: keep im2col
      Node* im = n->inputs[0]->producer;
      if (!im || im->op != "im2col" || g.users(n->inputs[0]).size() != 1) continue;
      const std::string kernel = n->get_str("kernel", "");
      if (kernel != "sparse" && !(kernel == "dense" && im->inputs[0]->shape[1] <= kDenseDirectChannels)) continue;
      // A 1x1 window (a strided 1x1 conv) reads one phase plane of the Sh * Sw pad_planes would
      // write: im2col's subsampling copy is cheaper.
      if (im->get_ints("kernel") == std::vector<int64_t>{1, 1}) continue;
      if (!fits_displacements(im, n)) continue;  // im2col then; the kernel's offsets would not fit
      rewrite(g, im, n);
      changed = true;
    }
    if (!changed) return subsample_blocked(g);
    g.remove_dead();  // the replaced im2col nodes still read the crops
    fold_residuals(g);
    // A crop read only by the next direct convolution's pad_planes: pad_planes reads the grid
    // itself (attr width = the columns that are data) and the crop pass disappears.
    std::vector<Node*> pads;
    for (const auto& np : g.nodes())
      if (np->op == "pad_planes") pads.push_back(np.get());
    for (Node* pad : pads) {
      if (pad->has("width")) continue;
      Node* crop = pad->inputs[0]->producer;
      if (!crop || crop->op != "crop" || crop->has("strides") || crop->inputs.size() != 1 ||
          g.users(pad->inputs[0]).size() != 1 || g.is_graph_output(pad->inputs[0]))
        continue;
      Value* grid = crop->inputs[0];
      Node* dc = grid->producer;
      if (writes_planes(g, dc, grid, pad)) continue;
      pad->attrs["width"] = pad->inputs[0]->shape[3];
      pad->inputs[0] = grid;
    }
    g.remove_dead();
    pool_grids(g);
    subsample_blocked(g);  // last: residual adds are crops now
    return true;
  }

 private:
  // maxpool(crop(%g)) -> maxpool(%g) {width = the crop's columns}: a 3-wide, stride-2 max pool (a
  // ResNet stem's; AVX-512 or AVX2 code) reads the direct convolution's grid itself, so neither the crop's
  // copy of the image (NCHW, written for the pool) nor its read by the pool happens. The same for
  // a 3x3 "same" depthwise conv whose rows are whole vectors (MobileNet's 112 x 112 after its
  // stem): the runtime's shifted-window code reads the grid's rows; with AVX2 (VL 8) its
  // channel-transposed tiles do, rows of any width. The pool has AVX-512 and AVX2 code.
  void pool_grids(ir::Graph& g) {
    if (vl_ != 16 && vl_ != 8) return;
    bool changed = false;
    for (const auto& n : g.nodes()) {
      if (n->has("width")) continue;
      const bool pool = n->op == "maxpool" && n->get_ints("kernel")[1] == 3 && n->get_ints("strides")[1] == 2 &&
                        n->get_ints("dilations")[1] == 1;
      const bool depthwise = n->op == "depthwise" && n->get_ints("kernel") == std::vector<int64_t>{3, 3} &&
                             n->get_ints("strides") == std::vector<int64_t>{1, 1} &&
                             n->get_ints("pads") == std::vector<int64_t>{1, 1, 1, 1} &&
                             n->get_ints("dilations") == std::vector<int64_t>{1, 1} &&
                             (vl_ == 8 || n->inputs[0]->shape[3] % vl_ == 0) &&  // the tiles take any width
                             n->inputs[0]->shape[3] < (int64_t{1} << 20);         // ... below 2^20
      if (!pool && !depthwise) continue;
      Node* crop = n->inputs[0]->producer;
      if (!crop || crop->op != "crop" || crop->has("strides") || crop->has("epilogue") || crop->inputs.size() != 1 ||
          g.users(n->inputs[0]).size() != 1 || g.is_graph_output(n->inputs[0]))
        continue;
      // The depthwise code reads rows [0, H) of the grid (the crop must keep all of them) and
      // indexes a batch item's grid in int32 (lower's limit for its block code).
      const ir::Shape& gs = crop->inputs[0]->shape;
      if (depthwise && (gs[2] != n->inputs[0]->shape[2] || (gs[2] * gs[3] + 16) * gs[1] >= (int64_t{1} << 31)))
        continue;
      n->attrs["width"] = n->inputs[0]->shape[3];
      n->inputs[0] = crop->inputs[0];
      changed = true;
    }
    if (changed) g.remove_dead();
  }

  // im2col {1x1, no pads} of a ChannelBlocked producer's output, read by conv1x1 only -> crop
  // {strides} (see the top of this file).
  bool subsample_blocked(ir::Graph& g) {
    bool changed = false;
    for (const auto& n : g.nodes()) {
      if (n->op != "im2col" || n->get_ints("kernel") != std::vector<int64_t>{1, 1} ||
          n->get_ints("pads") != std::vector<int64_t>{0, 0, 0, 0})
        continue;
      const Node* src = n->inputs[0]->producer;
      if (!src || (src->op != "conv1x1" && src->op != "crop") || g.is_graph_output(n->outputs[0])) continue;
      const auto users = g.users(n->outputs[0]);
      if (users.empty() || !std::all_of(users.begin(), users.end(), [](const Node* u) { return u->op == "conv1x1"; }))
        continue;
      const auto strides = n->get_ints("strides");
      n->op = "crop";
      n->attrs.clear();
      n->attrs["strides"] = strides;
      changed = true;
    }
    return changed;
  }

  // add(crop(%g), %r) -> crop(%g, %r), at the add's place (after %r's producer); an activation
  // reading only the sum joins as the crop's epilogue.
  void fold_residuals(ir::Graph& g) {
    std::vector<Node*> crops;
    for (const auto& n : g.nodes())
      if (n->op == "crop" && n->inputs.size() == 1 && !n->has("strides")) crops.push_back(n.get());
    for (Node* crop : crops) {
      Value* y = crop->outputs[0];
      const auto users = g.users(y);
      if (users.size() != 1 || g.is_graph_output(y) || users[0]->op != "add") continue;
      Node* add = users[0];
      Value* r = add->inputs[0] == y ? add->inputs[1] : add->inputs[0];
      if (r == y || r->shape != y->shape || r->is_constant()) continue;
      Value* grid = crop->inputs[0];
      const auto attrs = crop->attrs;
      g.remove_node(crop);
      add->op = "crop";
      add->inputs = {grid, r};
      add->attrs = attrs;
      absorb_activation(g, add);
    }
    g.remove_dead();
  }

  // The planes of one batch item must be addressable with 32-bit displacements: the generated
  // code reads B row k at an immediate offset from the chunk.
  bool fits_displacements(const Node* im, const Node* conv) const {
    const ir::Shape& xs = im->inputs[0]->shape;
    const auto k = im->get_ints("kernel"), st = im->get_ints("strides"), pads = im->get_ints("pads");
    const ir::Shape& y = conv->outputs[0]->shape;
    const int64_t wq = (xs[3] + pads[1] + pads[3] + st[1] - 1) / st[1];
    const int64_t rows = (xs[2] + pads[0] + pads[2] + st[0] - 1) / st[0] + (k[0] - 1) + y[2] + 2 +
                         (vl_ + k[1]) / std::max<int64_t>(wq, 1);
    return (xs[1] * st[0] * st[1] * rows * wq + y[2] * wq + 2 * vl_) * 4 < (int64_t{1} << 31);
  }

  void rewrite(ir::Graph& g, Node* im, Node* conv) {
    Value* x = im->inputs[0];
    const ir::Shape& xs = x->shape;  // [B, C, H, W]
    const auto k = im->get_ints("kernel"), st = im->get_ints("strides"), pads = im->get_ints("pads"),
               dil = im->get_ints("dilations");
    Value* y = conv->outputs[0];
    const int64_t ho = y->shape[2], wo = y->shape[3];
    const int64_t hp = xs[2] + pads[0] + pads[2], wp = xs[3] + pads[1] + pads[3];
    const int64_t wq = (wp + st[1] - 1) / st[1];
    const int64_t hq = (hp + st[0] - 1) / st[0];
    const int64_t dy_max = (k[0] - 1) * dil[0] / st[0], dx_max = (k[1] - 1) * dil[1] / st[1];
    // The last vector of the padded grid reads up to row ho + dy_max, column dx_max + VL - 1 past it.
    const int64_t grid = (ho * wq + vl_ - 1) / vl_ * vl_;
    const int64_t rows = std::max(hq, (grid + dy_max * wq + dx_max + wq - 1) / wq + 1);

    Value* planes = g.add_value(x->name + ".planes", ir::DType::F32, {xs[0], xs[1] * st[0] * st[1], rows, wq});
    Node* pad = g.add_node("pad_planes", conv->name + ".pad", {x}, {planes}, im);
    pad->attrs["pads"] = pads;
    pad->attrs["strides"] = st;

    Value* wide = g.add_value(y->name + ".grid", ir::DType::F32, {xs[0], y->shape[1], ho, wq});
    std::vector<Value*> ins = {planes, conv->inputs[1]};
    if (conv->inputs.size() > 2) ins.push_back(conv->inputs[2]);
    Node* dc = g.add_node("conv_direct", conv->name, ins, {wide}, conv);
    (void)ho;
    (void)wo;
    dc->attrs = conv->attrs;  // kernel choice, sparsity, epilogue
    dc->attrs["kernel"] = std::string("sparse");  // a dense first layer: every weight in the pattern
    dc->attrs["kernel_shape"] = k;
    dc->attrs["strides"] = st;
    dc->attrs["dilations"] = dil;
    dc->attrs["in_channels"] = xs[1];

    // crop takes conv1x1's place (and its output value) right after the kernel.
    const std::string name = conv->name;
    const Node* next = nullptr;
    for (size_t i = 0; i + 1 < g.nodes().size(); ++i)
      if (g.nodes()[i].get() == conv) next = g.nodes()[i + 1].get();
    g.remove_node(conv);
    g.add_node("crop", name + ".crop", {wide}, {y}, next);
  }

  // The kernel of `dc` writes `pad`'s planes itself when they are its grid shifted by the pads:
  // stride 1 (one phase) and the same row width. The kernel then stores grid column n at plane
  // position pad_top * Wq + pad_left + n, the grid's extra columns landing on the pad columns,
  // which a zero_borders step clears after it. Returns whether it rewired the graph.
  bool writes_planes(ir::Graph& g, Node* dc, Value* grid, Node* pad) {
    if (!dc || dc->op != "conv_direct" || g.users(grid).size() != 1) return false;
    const auto st = pad->get_ints("strides"), pads = pad->get_ints("pads");
    Value* planes = pad->outputs[0];
    const int64_t wq = grid->shape[3], rows = planes->shape[2];
    const int64_t grid_cols = (grid->shape[2] * wq + vl_ - 1) / vl_ * vl_;
    if (st != std::vector<int64_t>{1, 1} || planes->shape[3] != wq || pads[0] * wq + pads[1] + grid_cols > rows * wq)
      return false;
    if ((dc->outputs[0]->shape[1] * rows * wq + vl_) * 4 >= (int64_t{1} << 31)) return false;  // C displacements
    const int64_t width = pad->inputs[0]->shape[3], height = pad->inputs[0]->shape[2];
    dc->attrs["planes_out"] = std::vector<int64_t>{pads[0], pads[1], height, width};
    dc->attrs["grid_rows"] = grid->shape[2];
    g.remove_node(pad);
    dc->outputs[0] = planes;
    planes->producer = dc;
    return true;
  }

  int64_t vl_;
};

// masked-direct (after choose-layout, AVX-512 only): a 3x3, stride-1, dilation-1, pad-1 direct
// convolution whose planes come from an NCHW activation read only by it reads that activation
// itself, and writes its output compact instead of a grid to crop:
//   %p = pad_planes(%x : row); %g = conv_direct(%p, %w, %b); %y = crop(%g) : cb or row
//     ->  %y = conv_direct(%x, %w, %b) {masked = [H, W]} : cb or row (row: NCHW planes)
//   %p = pad_planes(%x : row); %g = conv_direct(%p, %w, %b); %q = pad_planes(%g) {width = W}
//     ->  %y = conv_direct(%x, %w, %b) {masked = [H, W]} : cb; %q = pad_planes(%y)
// The generated kernel masks off, lane by lane, the taps that fall outside the image
// (backend_x86 KernelPlan::mask_h / mask_w), so neither copy runs. A crop with a residual,
// planes written by a previous conv, a grid that is the next conv's planes, or another geometry
// keep the steps as they are.
class MaskedDirect : public Pass {
 public:
  explicit MaskedDirect(int64_t vl) : vl_(vl) {}
  const char* name() const override { return "masked-direct"; }

  bool run(ir::Graph& g) override {
    if (vl_ != 16) return false;  // lane masks are AVX-512's
    std::vector<Node*> work;
    for (const auto& n : g.nodes())
      if (n->op == "conv_direct") work.push_back(n.get());
    bool changed = false;
    for (Node* dc : work) {
      Node* pad = dc->inputs[0]->producer;
      if (!pad || maskable_conv(g, pad) != dc || pad->inputs[0]->layout != ir::Layout::RowMajor) continue;
      Value* x = pad->inputs[0];
      Value* grid = dc->outputs[0];
      const int64_t h = x->shape[2], w = x->shape[3];
      if ((x->shape[1] * h * w + 2 * vl_) * 4 >= (int64_t{1} << 31) ||
          (grid->shape[1] * h * w + 2 * vl_) * 4 >= (int64_t{1} << 31))
        continue;  // the kernel's B and C displacements
      Node* next = g.users(grid)[0];
      Value* y = nullptr;
      if (next->op == "crop") {
        y = next->outputs[0];  // ChannelBlocked, or NCHW (choose-layout's crop to rows)
        g.remove_node(next);
      } else {
        // The next conv's pad_planes (or a depthwise conv) read the grid's first W columns: it
        // reads the compact output instead.
        y = g.add_value(grid->name + ".compact", ir::DType::F32, {grid->shape[0], grid->shape[1], h, w});
        y->layout = ir::Layout::ChannelBlocked;
        next->inputs[0] = y;
        next->attrs.erase("width");
      }
      dc->inputs[0] = x;
      dc->attrs["masked"] = std::vector<int64_t>{h, w};
      g.remove_node(pad);
      grid->producer = nullptr;
      dc->outputs[0] = y;
      y->producer = dc;
      changed = true;
    }
    if (changed) g.remove_dead();
    return changed;
  }

 private:
  int64_t vl_;
};

}  // namespace

ir::Node* maskable_conv(const ir::Graph& g, const ir::Node* pad) {
  if (pad->op != "pad_planes" || pad->has("width") || pad->get_ints("pads") != std::vector<int64_t>{1, 1, 1, 1} ||
      pad->get_ints("strides") != std::vector<int64_t>{1, 1})
    return nullptr;
  const Value* planes = pad->outputs[0];
  const auto readers = g.users(planes);
  if (readers.size() != 1 || g.is_graph_output(planes)) return nullptr;
  Node* dc = readers[0];
  if (dc->op != "conv_direct" || dc->inputs[0] != planes || dc->has("planes_out") || dc->has("masked") ||
      dc->get_ints("kernel_shape") != std::vector<int64_t>{3, 3} || dc->get_ints("strides") != std::vector<int64_t>{1, 1} ||
      dc->get_ints("dilations") != std::vector<int64_t>{1, 1})
    return nullptr;
  const Value* grid = dc->outputs[0];
  const auto users = g.users(grid);
  if (users.size() != 1 || g.is_graph_output(grid)) return nullptr;
  const Node* next = users[0];
  const int64_t w = pad->inputs[0]->shape[3];
  if (next->op == "crop" && !next->has("strides") && next->inputs.size() == 1 && next->outputs[0]->shape[3] == w)
    return dc;
  // The next conv's pad_planes, or a depthwise conv (pool_grids), reading the grid's first W columns.
  if ((next->op == "pad_planes" || next->op == "depthwise") && next->get_int("width", 0) == w) return dc;
  return nullptr;
}

std::unique_ptr<Pass> make_direct_conv(int64_t vector_floats) { return std::make_unique<DirectConv>(vector_floats); }
std::unique_ptr<Pass> make_masked_direct(int64_t vector_floats) { return std::make_unique<MaskedDirect>(vector_floats); }

}  // namespace sdnn::passes
