// The LSTM recurrence of a whole sequence as two TensorFlow ops (forward, and its gradient) over
// MKL's packed GEMM: the recurrent kernel U is packed once per sequence, and every step's
// h_{t-1} U (forward) and dz_t U^T (backward) multiplies the packed copy. The input projection
// and the weight gradient dU = H^T dZ stay whole-sequence matmuls in TensorFlow (layers/native_lstm.py).
//
// Semantics are keras.layers.RNN's with a mask, time-major, in processing order:
//   z_t = z_in[t] + h_{t-1} U;  i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of z_t's four blocks
//   c_t = f c_{t-1} + i g;  h_t = o tanh(c_t);  out_t = h_t
// and where mask[t, n] == 0 row n keeps h, c and repeats out_{t-1} (zeros with zero_output).
// With norm "layer" (layers.LayerNormLSTMCell; z_in then holds LN(x_t W) + b) or "batch"
// (layers.BatchNormLSTMCell in training; z_in holds BN(x_t W) + b, normalised by the caller):
//   z_t = z_in[t] + N(h_{t-1} U; gamma_h, beta_h);  h_t = o tanh(N(c_t; gamma_c, beta_c))
// N(v) = (v - mean) / sqrt(variance + epsilon) * gamma + beta, with mean and (biased) variance over
// a row's units (layer) or, per column, over the rows that run step t (batch: the step's batch
// statistics, which the op also outputs for the population statistics).
#include <mkl.h>
#include <omp.h>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

using namespace tensorflow;

REGISTER_OP("RnnappsLstm")
    .Input("z_in: float")  // (time, batch, 4 units): x_t W + b
    .Input("mask: float")  // (time, batch): 1 runs the step, 0 skips it
    .Input("h0: float").Input("c0: float")
    .Input("recurrent_kernel: float")  // (units, 4 units)
    .Input("norms: float")  // a norm: gamma_h, beta_h (4 units each), gamma_c, beta_c (units each); else empty
    .Input("input_norm: float")  // layer: gamma_x, beta_x, b (4 units each): z_in is then x_t W, normalised here
    .Attr("zero_output: bool = false")
    .Attr("norm: {'none', 'layer', 'batch'} = 'none'")
    .Attr("epsilon: float = 1e-5")
    .Output("outputs: float")  // (time, batch, units)
    .Output("h: float").Output("c: float")  // final states
    .Output("h_states: float")  // (time, batch, units): h after each step, for the gradient
    .Output("workspace: float")  // gate activations, cell states (and the normalised values, 1 / std)
    .Output("statistics: float")  // batch: (time, 2 (4 units) + 2 units) each step's mean and variance of h U, then
                                  // of c; else (0, ...)
    .SetShapeFn([](shape_inference::InferenceContext* c) {
      auto z = c->input(0), h0 = c->input(2);
      auto seq = c->MakeShape({c->Dim(z, 0), c->Dim(z, 1), c->Dim(h0, 1)});
      c->set_output(0, seq);
      c->set_output(1, h0);
      c->set_output(2, h0);
      c->set_output(3, seq);
      c->set_output(4, c->Vector(c->UnknownDim()));
      c->set_output(5, c->Matrix(c->UnknownDim(), c->UnknownDim()));
      return OkStatus();
    });

REGISTER_OP("RnnappsLstmGrad")
    .Input("mask: float").Input("c0: float").Input("recurrent_kernel: float").Input("norms: float")
    .Input("input_norm: float").Input("workspace: float")
    .Input("d_outputs: float").Input("d_h: float").Input("d_c: float")
    .Attr("zero_output: bool = false")
    .Attr("norm: {'none', 'layer', 'batch'} = 'none'")
    .Output("d_z_in: float")  // (time, batch, 4 units)
    .Output("d_recurrent: float")  // a norm: d(h_{t-1} U) (time, batch, 4 units), for dU; else empty
    .Output("d_h0: float").Output("d_c0: float")
    .Output("d_norms: float")  // as norms
    .Output("d_input_norm: float")  // as input_norm
    .SetShapeFn([](shape_inference::InferenceContext* c) {
      auto d = c->input(6), h = c->input(7);
      c->set_output(0, c->MakeShape({c->Dim(d, 0), c->Dim(d, 1), c->UnknownDim()}));
      c->set_output(1, c->UnknownShape());
      c->set_output(2, h);
      c->set_output(3, h);
      c->set_output(4, c->input(3));
      c->set_output(5, c->input(4));
      return OkStatus();
    });

namespace {

inline float Sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

void UseGnuThreads() {
  static const bool done = [] {
    mkl_set_threading_layer(MKL_THREADING_GNU);  // the OpenMP of the loops below
    return true;
  }();
  (void)done;
}

// v (size) <- (v - mean) / sqrt(variance + epsilon); returns 1 / sqrt(variance + epsilon).
inline float NormaliseRow(float* v, int64_t size, float epsilon) {
  float mean = 0.0f, square = 0.0f;
#pragma omp simd reduction(+ : mean)
  for (int64_t j = 0; j < size; ++j) mean += v[j];
  mean /= size;
#pragma omp simd reduction(+ : square)
  for (int64_t j = 0; j < size; ++j) square += (v[j] - mean) * (v[j] - mean);
  const float inverse = 1.0f / std::sqrt(square / size + epsilon);
#pragma omp simd
  for (int64_t j = 0; j < size; ++j) v[j] = (v[j] - mean) * inverse;
  return inverse;
}

// The gradient of a normalised row: d <- inverse * (d - mean(d) - v * mean(d v)), v the normalised values.
inline void NormaliseRowGradient(float* d, const float* v, int64_t size, float inverse) {
  float sum = 0.0f, dot = 0.0f;
#pragma omp simd reduction(+ : sum, dot)
  for (int64_t j = 0; j < size; ++j) sum += d[j], dot += d[j] * v[j];
  sum /= size, dot /= size;
#pragma omp simd
  for (int64_t j = 0; j < size; ++j) d[j] = inverse * (d[j] - sum - v[j] * dot);
}

const float* In(OpKernelContext* ctx, int i) { return ctx->input(i).flat<float>().data(); }
float* Out(Tensor* t) { return t->flat<float>().data(); }

// A packed copy of U (units, 4 units) for batch x U (transpose=false) or batch x U^T (true).
class PackedKernel {
 public:
  PackedKernel(const float* u, int64_t batch, int64_t units, bool transpose) {
    const int64_t n = transpose ? units : 4 * units, k = transpose ? 4 * units : units;
    data_ = static_cast<float*>(mkl_malloc(cblas_sgemm_pack_get_size(CblasBMatrix, batch, n, k), 64));
    cblas_sgemm_pack(CblasRowMajor, CblasBMatrix, transpose ? CblasTrans : CblasNoTrans, batch, n, k, 1.0f, u,
                     4 * units, data_);
    n_ = n;
    k_ = k;
  }
  ~PackedKernel() { mkl_free(data_); }
  // out = a (batch, k) x packed + beta * out
  void Multiply(const float* a, int64_t batch, float beta, float* out) const {
    cblas_sgemm_compute(CblasRowMajor, CblasNoTrans, CblasPacked, batch, n_, k_, a, k_, data_, n_, beta, out, n_);
  }

 private:
  float* data_;
  int64_t n_, k_;
};

enum class Norm { kNone, kLayer, kBatch };

// What the forward pass keeps for the backward one, in one float buffer (the op's workspace output):
// the gate activations (time, batch, 4 units) and cell states (time, batch, units); with a norm the
// normalised h U (time, batch, 4 units) and c (time, batch, units) and their 1 / std, per row (layer:
// time, batch each) or per column (batch: time, 4 units and time, units); with input_norm the
// normalised x W (time, batch, 4 units) and its 1 / std, per row or per column likewise.
template <typename F>
struct Workspace {
  static int64_t Inverses(Norm norm, int64_t T, int64_t N, int64_t width) {
    return norm == Norm::kLayer ? T * N : norm == Norm::kBatch ? T * width : 0;
  }
  static int64_t Size(int64_t T, int64_t N, int64_t H, Norm norm, bool input_norm) {
    return 5 * T * N * H + (norm != Norm::kNone ? 5 * T * N * H : 0) + Inverses(norm, T, N, 4 * H) +
           Inverses(norm, T, N, H) + (input_norm ? 4 * T * N * H + Inverses(norm, T, N, 4 * H) : 0);
  }
  Workspace(F* base, int64_t T, int64_t N, int64_t H, Norm norm)
      : gates(base), cs(gates + 4 * T * N * H), r_hat(cs + T * N * H), c_hat(r_hat + 4 * T * N * H),
        r_inv(c_hat + T * N * H), c_inv(r_inv + Inverses(norm, T, N, 4 * H)), x_hat(c_inv + Inverses(norm, T, N, H)),
        x_inv(x_hat + 4 * T * N * H) {}
  F *gates, *cs, *r_hat, *c_hat, *r_inv, *c_inv, *x_hat, *x_inv;
};

// The attributes both ops share.
class LstmKernel : public OpKernel {
 protected:
  explicit LstmKernel(OpKernelConstruction* c) : OpKernel(c) {
    UseGnuThreads();
    std::string norm;
    OP_REQUIRES_OK(c, c->GetAttr("zero_output", &zero_output_));
    OP_REQUIRES_OK(c, c->GetAttr("norm", &norm));
    norm_ = norm == "layer" ? Norm::kLayer : norm == "batch" ? Norm::kBatch : Norm::kNone;
    layer_norm_ = norm_ == Norm::kLayer;
    batch_norm_ = norm_ == Norm::kBatch;
  }
  bool zero_output_, layer_norm_, batch_norm_;
  Norm norm_;
};

// Batch norm works on columns: a thread takes a block of units (their four gate columns and their cell
// column) and loops over the rows, vectorized along the block. Wide blocks pay: bn_lstm in benchmarks.cells
// (256 units, 2 cores) trained at 53,018 tokens/s with blocks of 16, 60,572 of 32, 66,504 of 64, 66,111 of 128
// and 57,624 of 256 (one thread); so up to kBlock units, split evenly over the threads.
constexpr int64_t kBlock = 64;
inline int64_t UnitBlock(int64_t units) {
  const int64_t share = (units + omp_get_max_threads() - 1) / omp_get_max_threads();
  return std::min(kBlock, std::max<int64_t>(16, (share + 15) / 16 * 16));
}

// Batch norm of columns [0, width) of v (rows of `stride` floats) over the rows n with run[n] != 0 (count > 0
// of them): their mean and (biased) variance into mean and variance, 1 / sqrt(variance + epsilon) into inv, and
// the normalised values of those rows into hat (same layout; may be v).
inline void NormaliseColumns(const float* v, float* hat, int64_t stride, const float* run, int64_t N, int64_t width,
                             float count, float epsilon, float* mean, float* variance, float* inv) {
  float m[kBlock] = {}, s[kBlock] = {};
  for (int64_t n = 0; n < N; ++n)
    if (run[n] != 0.0f) {
#pragma omp simd
      for (int64_t j = 0; j < width; ++j) m[j] += v[n * stride + j];
    }
  for (int64_t j = 0; j < width; ++j) m[j] /= count;
  for (int64_t n = 0; n < N; ++n)
    if (run[n] != 0.0f) {
#pragma omp simd
      for (int64_t j = 0; j < width; ++j) s[j] += (v[n * stride + j] - m[j]) * (v[n * stride + j] - m[j]);
    }
  for (int64_t j = 0; j < width; ++j) {
    mean[j] = m[j], variance[j] = s[j] / count;
    inv[j] = 1.0f / std::sqrt(variance[j] + epsilon);
  }
  for (int64_t n = 0; n < N; ++n)
    if (run[n] != 0.0f) {
#pragma omp simd
      for (int64_t j = 0; j < width; ++j) hat[n * stride + j] = (v[n * stride + j] - m[j]) * inv[j];
    }
}

// Its gradient for y = gamma hat + beta, given dy (same layout as hat): d_gamma += sum dy hat, d_beta += sum dy
// over the rows that ran, and for them dx = inv (dy gamma - mean(dy gamma) - hat mean(dy gamma hat)) (dx may
// be dy); the other rows' dx are left alone.
inline void NormaliseColumnsGradient(const float* dy, float* dx, const float* hat, int64_t stride, const float* run,
                                     int64_t N, int64_t width, float count, const float* gamma, const float* inv,
                                     float* d_gamma, float* d_beta) {
  float sum[kBlock] = {}, dot[kBlock] = {};  // of dy and of dy hat
  for (int64_t n = 0; n < N; ++n)
    if (run[n] != 0.0f) {
#pragma omp simd
      for (int64_t j = 0; j < width; ++j) {
        sum[j] += dy[n * stride + j];
        dot[j] += dy[n * stride + j] * hat[n * stride + j];
      }
    }
  for (int64_t j = 0; j < width; ++j) d_gamma[j] += dot[j], d_beta[j] += sum[j];
  for (int64_t j = 0; j < width; ++j) sum[j] *= gamma[j] / count, dot[j] *= gamma[j] / count;
  for (int64_t n = 0; n < N; ++n)
    if (run[n] != 0.0f) {
#pragma omp simd
      for (int64_t j = 0; j < width; ++j) {
        const int64_t k = n * stride + j;
        dx[k] = inv[j] * (dy[k] * gamma[j] - sum[j] - hat[k] * dot[j]);
      }
    }
}

// A row that skips step t, its units' values from offset r to r + width: it keeps c and h and repeats the
// previous output (zeros with zero_output, or at the first step).
inline void SkipRow(int64_t r, int64_t width, const float* c_prev, const float* h_prev, const float* prev_out,
                    float* c_t, float* h_t, float* o_t, bool zeros) {
  std::memcpy(c_t + r, c_prev + r, sizeof(float) * width);
  std::memcpy(h_t + r, h_prev + r, sizeof(float) * width);
  if (zeros)
    std::memset(o_t + r, 0, sizeof(float) * width);
  else
    std::memcpy(o_t + r, prev_out + r, sizeof(float) * width);
}

// Its gradient, for the gate columns of units [b, b + width) of row n (dzn, drn: the row's 4 units; drn may be
// null) and its units' values from offset r: no gate gradients; d out_t joins the carry to out_{t-1} (none with
// zero_output); dh passes to h_{t-1} unchanged through keep.
inline void SkippedRowGradient(int64_t r, int64_t b, int64_t width, int64_t H, float* dzn, float* drn,
                               const float* dh, const float* d_out_t, float* carry, float* keep, bool zero_output) {
  for (int64_t s = 0; s < 4; ++s) {
    std::memset(dzn + s * H + b, 0, sizeof(float) * width);
    if (drn) std::memset(drn + s * H + b, 0, sizeof(float) * width);
  }
  for (int64_t j = 0; j < width; ++j) {
    const int64_t k = r + j;
    carry[k] = zero_output ? 0.0f : carry[k] + d_out_t[k];
    keep[k] = dh[k];
  }
}

// A row that ran, once its d c_t is dc + d_norm (d through the cell state's norm), for units j < width (zn, dzn:
// the gate values and gradients at the first of them; the other pointers at its offset): the i, f and g gates'
// gradients, d c_{t-1} = d c_t f into dc, carry and keep cleared.
inline void GateGradients(const float* zn, float* dzn, const float* d_norm, const float* c_prev, float* dc,
                          float* carry, float* keep, int64_t H, int64_t width) {
#pragma omp simd
  for (int64_t j = 0; j < width; ++j) {
    const float i = zn[j], f = zn[H + j], g = zn[2 * H + j];
    const float d_ct = dc[j] + d_norm[j];
    dzn[j] = d_ct * g * i * (1.0f - i);
    dzn[H + j] = d_ct * c_prev[j] * f * (1.0f - f);
    dzn[2 * H + j] = d_ct * i * (1.0f - g * g);
    dc[j] = d_ct * f;
    carry[j] = 0.0f;
    keep[j] = 0.0f;
  }
}

class LstmOp : public LstmKernel {
 public:
  explicit LstmOp(OpKernelConstruction* c) : LstmKernel(c) { OP_REQUIRES_OK(c, c->GetAttr("epsilon", &epsilon_)); }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& z_in = ctx->input(0);
    const int64_t T = z_in.dim_size(0), N = z_in.dim_size(1), H = ctx->input(2).dim_size(1), G = 4 * H;
    const bool normed = norm_ != Norm::kNone;
    OP_REQUIRES(ctx, z_in.dim_size(2) == G && ctx->input(4).dim_size(0) == H && ctx->input(4).dim_size(1) == G,
                errors::InvalidArgument("z_in (time, batch, 4 units) and recurrent_kernel (units, 4 units) expected"));
    OP_REQUIRES(ctx, ctx->input(5).NumElements() == (normed ? 2 * G + 2 * H : 0),
                errors::InvalidArgument("norms: gamma_h, beta_h, gamma_c, beta_c with a norm, else empty"));
    const bool input_norm = ctx->input(6).NumElements() > 0;
    OP_REQUIRES(ctx, !input_norm || (normed && ctx->input(6).NumElements() == 3 * G),
                errors::InvalidArgument("input_norm: gamma_x, beta_x, b (4 units each) with a norm, or empty"));
    const int64_t S = 2 * G + 2 * H + (input_norm ? 2 * G : 0);  // batch statistics of a step
    Tensor *out, *h, *c, *hs, *ws, *st;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({T, N, H}), &out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({N, H}), &h));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({N, H}), &c));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, TensorShape({T, N, H}), &hs));
    const int64_t workspace_size = Workspace<float>::Size(T, N, H, norm_, input_norm);
    OP_REQUIRES_OK(ctx, ctx->allocate_output(4, TensorShape({workspace_size}), &ws));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(5, TensorShape({batch_norm_ ? T : 0, S}), &st));
    const float *mask = In(ctx, 1), *h0 = In(ctx, 2), *c0 = In(ctx, 3), *norms = In(ctx, 5);
    const float *gamma_h = norms, *beta_h = norms + G, *gamma_c = norms + 2 * G, *beta_c = gamma_c + H;
    const Workspace<float> w(Out(ws), T, N, H, norm_);
    float *gates = w.gates, *cs = w.cs, *r_hat = w.r_hat, *c_hat = w.c_hat, *r_inv = w.r_inv, *c_inv = w.c_inv;
    float *hs_ = Out(hs), *out_ = Out(out), *stats = Out(st);
    std::memcpy(gates, In(ctx, 0), sizeof(float) * T * N * G);
    std::memset(stats, 0, sizeof(float) * st->NumElements());  // a step no row runs: zeros, as masked moments
    if (input_norm && batch_norm_) {  // z_in = BN(x W) + b, each step's rows that run; keeps x_hat and 1 / std
      float *x_hat = w.x_hat, *x_inv = w.x_inv;
      const float *gamma_x = In(ctx, 6), *beta_x = gamma_x + G, *bias = beta_x + G;
#pragma omp parallel for collapse(2)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t col = 0; col < G; col += kBlock) {
          const float* run = mask + t * N;
          float count = 0.0f;
          for (int64_t n = 0; n < N; ++n) count += run[n] != 0.0f;
          if (count == 0.0f) continue;
          const int64_t width = std::min(kBlock, G - col), offset = t * N * G + col;
          float* stat = stats + t * S + 2 * G + 2 * H + col;
          NormaliseColumns(gates + offset, x_hat + offset, G, run, N, width, count, epsilon_, stat, stat + G,
                           x_inv + t * G + col);
          for (int64_t n = 0; n < N; ++n)
            if (run[n] != 0.0f) {
              float *zn = gates + offset + n * G, *xn = x_hat + offset + n * G;
#pragma omp simd
              for (int64_t j = 0; j < width; ++j)
                zn[j] = gamma_x[col + j] * xn[j] + beta_x[col + j] + bias[col + j];
            }
        }
    } else if (input_norm) {  // z_in = LN(x W) + b for every step's rows; keeps the normalised x W and 1 / std
      float *x_hat = w.x_hat, *x_inv = w.x_inv;
      const float *gamma_x = In(ctx, 6), *beta_x = gamma_x + G, *b = beta_x + G;
#pragma omp parallel for
      for (int64_t row = 0; row < T * N; ++row) {
        float *xn = x_hat + row * G, *zn = gates + row * G;
        std::memcpy(xn, zn, sizeof(float) * G);
        x_inv[row] = NormaliseRow(xn, G, epsilon_);
#pragma omp simd
        for (int64_t k = 0; k < G; ++k) zn[k] = gamma_x[k] * xn[k] + beta_x[k] + b[k];
      }
    }
    if (N > 0 && H > 0) {
      PackedKernel u(In(ctx, 4), N, H, false);
      for (int64_t t = 0; t < T; ++t) {
        const float *h_prev = t ? hs_ + (t - 1) * N * H : h0, *c_prev = t ? cs + (t - 1) * N * H : c0;
        const float *run = mask + t * N, *prev_out = out_ + (t ? t - 1 : 0) * N * H;
        const bool zeros = zero_output_ || t == 0;
        float *z = gates + t * N * G, *c_t = cs + t * N * H, *h_t = hs_ + t * N * H, *o_t = out_ + t * N * H;
        float *r_t = r_hat + t * N * G, *ch_t = c_hat + t * N * H;
        if (normed)
          u.Multiply(h_prev, N, 0.0f, r_t);
        else
          u.Multiply(h_prev, N, 1.0f, z);
        if (batch_norm_) {
          float count = 0.0f;
          for (int64_t n = 0; n < N; ++n) count += run[n] != 0.0f;
          const int64_t block = UnitBlock(H);
          float* stat = stats + t * S;  // mean and variance of h U, then of c
#pragma omp parallel for
          for (int64_t b = 0; b < H; b += block) {
            const int64_t width = std::min(block, H - b);
            for (int64_t s = 0; s < 4 && count > 0; ++s) {  // z += BN(h U) for the rows that run
              const int64_t col = s * H + b;
              NormaliseColumns(r_t + col, r_t + col, G, run, N, width, count, epsilon_, stat + col, stat + G + col,
                               r_inv + t * G + col);
              for (int64_t n = 0; n < N; ++n)
                if (run[n] != 0.0f) {
                  const float* rn = r_t + n * G + col;
                  float* zn = z + n * G + col;
#pragma omp simd
                  for (int64_t j = 0; j < width; ++j) zn[j] += gamma_h[col + j] * rn[j] + beta_h[col + j];
                }
            }
            for (int64_t n = 0; n < N; ++n) {
              const int64_t r = n * H + b;
              float* zn = z + n * G + b;
              if (run[n] != 0.0f) {
#pragma omp simd
                for (int64_t j = 0; j < width; ++j) {
                  const float i = Sigmoid(zn[j]), f = Sigmoid(zn[H + j]), g = std::tanh(zn[2 * H + j]),
                              o = Sigmoid(zn[3 * H + j]);
                  zn[j] = i, zn[H + j] = f, zn[2 * H + j] = g, zn[3 * H + j] = o;
                  c_t[r + j] = f * c_prev[r + j] + i * g;
                }
              } else {
                SkipRow(r, width, c_prev, h_prev, prev_out, c_t, h_t, o_t, zeros);
              }
            }
            if (count == 0.0f) continue;
            // h = o tanh(BN(c))
            NormaliseColumns(c_t + b, ch_t + b, H, run, N, width, count, epsilon_, stat + 2 * G + b,
                             stat + 2 * G + H + b, c_inv + t * H + b);
            for (int64_t n = 0; n < N; ++n)
              if (run[n] != 0.0f) {
                const int64_t r = n * H + b;
                const float* o = z + n * G + 3 * H + b;
#pragma omp simd
                for (int64_t j = 0; j < width; ++j)
                  h_t[r + j] = o_t[r + j] = o[j] * std::tanh(gamma_c[b + j] * ch_t[r + j] + beta_c[b + j]);
              }
          }
          continue;
        }
#pragma omp parallel for
        for (int64_t n = 0; n < N; ++n) {
          const int64_t r = n * H;
          float* zn = z + n * G;
          if (run[n] != 0.0f) {
            if (layer_norm_) {
              float* rn = r_t + n * G;
              r_inv[t * N + n] = NormaliseRow(rn, G, epsilon_);
#pragma omp simd
              for (int64_t k = 0; k < G; ++k) zn[k] += gamma_h[k] * rn[k] + beta_h[k];
            }
#pragma omp simd
            for (int64_t j = 0; j < H; ++j) {
              const float i = Sigmoid(zn[j]), f = Sigmoid(zn[H + j]), g = std::tanh(zn[2 * H + j]),
                          o = Sigmoid(zn[3 * H + j]);
              const float cell = f * c_prev[r + j] + i * g;
              zn[j] = i, zn[H + j] = f, zn[2 * H + j] = g, zn[3 * H + j] = o;
              c_t[r + j] = cell;
              if (!layer_norm_) h_t[r + j] = o_t[r + j] = o * std::tanh(cell);
            }
            if (layer_norm_) {  // h = o tanh(LN(c))
              float* cn = ch_t + r;
              std::memcpy(cn, c_t + r, sizeof(float) * H);
              c_inv[t * N + n] = NormaliseRow(cn, H, epsilon_);
#pragma omp simd
              for (int64_t j = 0; j < H; ++j)
                h_t[r + j] = o_t[r + j] = zn[3 * H + j] * std::tanh(gamma_c[j] * cn[j] + beta_c[j]);
            }
          } else {
            SkipRow(r, H, c_prev, h_prev, prev_out, c_t, h_t, o_t, zeros);
          }
        }
      }
    }
    std::memcpy(Out(h), T ? hs_ + (T - 1) * N * H : h0, sizeof(float) * N * H);
    std::memcpy(Out(c), T ? cs + (T - 1) * N * H : c0, sizeof(float) * N * H);
  }

 private:
  float epsilon_;
};

class LstmGradOp : public LstmKernel {
 public:
  explicit LstmGradOp(OpKernelConstruction* c) : LstmKernel(c) {}
  void Compute(OpKernelContext* ctx) override {
    const Tensor& d_outputs = ctx->input(6);
    const bool input_norm = ctx->input(4).NumElements() > 0, normed = norm_ != Norm::kNone;
    const int64_t T = d_outputs.dim_size(0), N = d_outputs.dim_size(1), H = d_outputs.dim_size(2), G = 4 * H;
    const int64_t NG = layer_norm_ ? N * G : 0, NH = layer_norm_ ? N * H : 0;
    Tensor *d_z, *d_rec, *d_h, *d_c, *d_norms, *d_input_norm, carry_t, keep_t, sums_t;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({T, N, G}), &d_z));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({normed ? T : 0, N, G}), &d_rec));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({N, H}), &d_h));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, TensorShape({N, H}), &d_c));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(4, ctx->input(3).shape(), &d_norms));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(5, ctx->input(4).shape(), &d_input_norm));
    OP_REQUIRES_OK(ctx, ctx->allocate_temp(DT_FLOAT, TensorShape({N, H}), &carry_t));
    OP_REQUIRES_OK(ctx, ctx->allocate_temp(DT_FLOAT, TensorShape({N, H}), &keep_t));
    // layer: per-row sums over the steps of the norms' gradients (rows are a thread's own), added up at the
    // end, and d LN(c_t) of the current step; batch: d BN(c_t) gamma_c of the current step (columns are a
    // thread's own: their sums go straight into d_norms)
    OP_REQUIRES_OK(ctx, ctx->allocate_temp(DT_FLOAT, TensorShape({2 * NG + 2 * NH + (normed ? N * H : 0)}), &sums_t));
    const float *mask = In(ctx, 0), *c0 = In(ctx, 1), *norms = In(ctx, 3);
    const Workspace<const float> w(In(ctx, 5), T, N, H, norm_);
    const float *gates = w.gates, *cs = w.cs, *r_hat = w.r_hat, *c_hat = w.c_hat, *r_inv = w.r_inv, *c_inv = w.c_inv;
    const float *gamma_h = norms, *gamma_c = norms + 2 * G, *beta_c = gamma_c + H;
    const float* d_out = d_outputs.flat<float>().data();
    // dh, dc: the gradients of the states after step t; carry: of out_t through the masked steps after it
    // that repeated it; keep: what a skipped row passes on to h_{t-1} unchanged.
    float *dz = Out(d_z), *dr = Out(d_rec), *dh = Out(d_h), *dc = Out(d_c), *carry = Out(&carry_t);
    float *keep = Out(&keep_t), *sums = Out(&sums_t), *d_norm = Out(d_norms);
    float *s_gamma_h = sums, *s_beta_h = sums + NG, *s_gamma_c = sums + 2 * NG, *s_beta_c = s_gamma_c + NH;
    float* d_lc_row = s_beta_c + NH;  // d N(c_t) of the current step, per row
    float *d_gamma_h = d_norm, *d_beta_h = d_norm + G, *d_gamma_c = d_norm + 2 * G, *d_beta_c = d_gamma_c + H;
    std::memcpy(dh, In(ctx, 7), sizeof(float) * N * H);
    std::memcpy(dc, In(ctx, 8), sizeof(float) * N * H);
    std::memset(carry, 0, sizeof(float) * N * H);
    std::memset(sums, 0, sizeof(float) * sums_t.NumElements());
    std::memset(d_norm, 0, sizeof(float) * d_norms->NumElements());
    if (N > 0 && H > 0) {
      PackedKernel u_t(In(ctx, 2), N, H, true);
      for (int64_t t = T - 1; t >= 0; --t) {
        const float *z = gates + t * N * G, *c_t = cs + t * N * H, *c_prev = t ? cs + (t - 1) * N * H : c0;
        const float *d_out_t = d_out + t * N * H, *ch_t = c_hat + t * N * H, *r_t = r_hat + t * N * G;
        const float* run = mask + t * N;
        float *dz_t = dz + t * N * G, *dr_t = dr + (normed ? t * N * G : 0);
        if (batch_norm_) {
          float count = 0.0f;
          for (int64_t n = 0; n < N; ++n) count += run[n] != 0.0f;
          const float *inv_r = r_inv + t * G, *inv_c = c_inv + t * H;
          const int64_t block = UnitBlock(H);
#pragma omp parallel for
          for (int64_t b = 0; b < H; b += block) {
            const int64_t width = std::min(block, H - b);
            for (int64_t n = 0; n < N; ++n) {  // h = o tanh(BN(c)): the o gate, and d BN(c) into d_lc_row
              const int64_t r = n * H + b;
              float* dzn = dz_t + n * G;
              if (run[n] != 0.0f) {
                const float* o = z + n * G + 3 * H + b;
#pragma omp simd
                for (int64_t j = 0; j < width; ++j) {
                  const int64_t k = r + j;
                  const float lc = std::tanh(gamma_c[b + j] * ch_t[k] + beta_c[b + j]);
                  const float d_ht = dh[k] + d_out_t[k] + carry[k];
                  dzn[3 * H + b + j] = d_ht * lc * o[j] * (1.0f - o[j]);
                  d_lc_row[k] = d_ht * o[j] * (1.0f - lc * lc);
                }
              } else {
                SkippedRowGradient(r, b, width, H, dzn, dr_t + n * G, dh, d_out_t, carry, keep, zero_output_);
              }
            }
            if (count == 0.0f) continue;
            NormaliseColumnsGradient(d_lc_row + b, d_lc_row + b, ch_t + b, H, run, N, width, count, gamma_c + b,
                                     inv_c + b, d_gamma_c + b, d_beta_c + b);  // now d c_t through the norm
            for (int64_t n = 0; n < N; ++n)
              if (run[n] != 0.0f) {
                const int64_t r = n * H + b;
                GateGradients(z + n * G + b, dz_t + n * G + b, d_lc_row + r, c_prev + r, dc + r, carry + r, keep + r,
                              H, width);
              }
            for (int64_t s = 0; s < 4; ++s) {  // z = z_in + BN(h U): d(h U) through the recurrent norm
              const int64_t col = s * H + b;
              NormaliseColumnsGradient(dz_t + col, dr_t + col, r_t + col, G, run, N, width, count, gamma_h + col,
                                       inv_r + col, d_gamma_h + col, d_beta_h + col);
            }
          }
        } else {
#pragma omp parallel for
          for (int64_t n = 0; n < N; ++n) {
            const int64_t r = n * H;
            const float* zn = z + n * G;
            float* dzn = dz_t + n * G;
            if (run[n] != 0.0f) {
              if (layer_norm_) {  // h = o tanh(LN(c)): d LN(c) into d_lc_row, then through the norm
                float* dl = d_lc_row + r;
                const float* cn = ch_t + r;
#pragma omp simd
                for (int64_t j = 0; j < H; ++j) {
                  const int64_t k = r + j;
                  const float o = zn[3 * H + j], lc = std::tanh(gamma_c[j] * cn[j] + beta_c[j]);
                  const float d_ht = dh[k] + d_out_t[k] + carry[k], d_lc = d_ht * o * (1.0f - lc * lc);
                  dzn[3 * H + j] = d_ht * lc * o * (1.0f - o);
                  s_gamma_c[k] += d_lc * cn[j];
                  s_beta_c[k] += d_lc;
                  dl[j] = d_lc * gamma_c[j];
                }
                NormaliseRowGradient(dl, cn, H, c_inv[t * N + n]);
                GateGradients(zn, dzn, dl, c_prev + r, dc + r, carry + r, keep + r, H, H);
                // z = z_in + LN(h U): d(h U) through the recurrent norm
                float* drn = dr_t + n * G;
                const float* rn = r_t + n * G;
#pragma omp simd
                for (int64_t k = 0; k < G; ++k) {
                  s_gamma_h[n * G + k] += dzn[k] * rn[k];
                  s_beta_h[n * G + k] += dzn[k];
                  drn[k] = dzn[k] * gamma_h[k];
                }
                NormaliseRowGradient(drn, rn, G, r_inv[t * N + n]);
              } else {
#pragma omp simd
                for (int64_t j = 0; j < H; ++j) {
                  const int64_t k = r + j;
                  const float i = zn[j], f = zn[H + j], g = zn[2 * H + j], o = zn[3 * H + j];
                  const float tc = std::tanh(c_t[k]), d_ht = dh[k] + d_out_t[k] + carry[k];
                  const float d_ct = dc[k] + d_ht * o * (1.0f - tc * tc);
                  dzn[j] = d_ct * g * i * (1.0f - i);
                  dzn[H + j] = d_ct * c_prev[k] * f * (1.0f - f);
                  dzn[2 * H + j] = d_ct * i * (1.0f - g * g);
                  dzn[3 * H + j] = d_ht * tc * o * (1.0f - o);
                  dc[k] = d_ct * f;
                  carry[k] = 0.0f;
                  keep[k] = 0.0f;
                }
              }
            } else {
              SkippedRowGradient(r, 0, H, H, dzn, layer_norm_ ? dr_t + n * G : nullptr, dh, d_out_t, carry, keep,
                                 zero_output_);
            }
          }
        }
        std::memcpy(dh, keep, sizeof(float) * N * H);
        u_t.Multiply(normed ? dr_t : dz_t, N, 1.0f, dh);  // dh_{t-1} = kept + d(h U)_t U^T
      }
    }
    if (layer_norm_)  // gamma_h, beta_h, gamma_c, beta_c: the rows' sums added up
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t k = 0; k < G; ++k) d_gamma_h[k] += s_gamma_h[n * G + k], d_beta_h[k] += s_beta_h[n * G + k];
        for (int64_t j = 0; j < H; ++j) d_gamma_c[j] += s_gamma_c[n * H + j], d_beta_c[j] += s_beta_c[n * H + j];
      }
    float* d_in = Out(d_input_norm);  // gamma_x, beta_x, b; and d(x W) = the norm's gradient of dz gamma_x
    std::memset(d_in, 0, sizeof(float) * d_input_norm->NumElements());
    if (input_norm && batch_norm_) {  // each step's columns: a thread's own sums of dz x_hat and dz, added up
      const float *x_hat = w.x_hat, *x_inv = w.x_inv, *gamma_x = In(ctx, 4);
#pragma omp parallel
      {
        std::vector<float> local(2 * G, 0.0f);
#pragma omp for collapse(2)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t col = 0; col < G; col += kBlock) {
            const float* run = mask + t * N;
            float count = 0.0f;
            for (int64_t n = 0; n < N; ++n) count += run[n] != 0.0f;
            if (count == 0.0f) continue;  // dz is zero there
            const int64_t width = std::min(kBlock, G - col), offset = t * N * G + col;
            NormaliseColumnsGradient(dz + offset, dz + offset, x_hat + offset, G, run, N, width, count, gamma_x + col,
                                     x_inv + t * G + col, local.data() + col, local.data() + G + col);
          }
#pragma omp critical
        for (int64_t k = 0; k < G; ++k) {
          d_in[k] += local[k];
          d_in[G + k] += local[G + k];
          d_in[2 * G + k] += local[G + k];  // b and beta_x: both added to z
        }
      }
    } else if (input_norm) {
      const float *x_hat = w.x_hat, *x_inv = w.x_inv, *gamma_x = In(ctx, 4);
#pragma omp parallel
      {
        std::vector<float> local(2 * G, 0.0f);  // this thread's sums of dz x_hat and dz
#pragma omp for
        for (int64_t row = 0; row < T * N; ++row) {
          float* dzn = dz + row * G;
          const float* xn = x_hat + row * G;
#pragma omp simd
          for (int64_t k = 0; k < G; ++k) {
            local[k] += dzn[k] * xn[k];
            local[G + k] += dzn[k];
            dzn[k] *= gamma_x[k];
          }
          NormaliseRowGradient(dzn, xn, G, x_inv[row]);
        }
#pragma omp critical
        for (int64_t k = 0; k < G; ++k) {
          d_in[k] += local[k];
          d_in[G + k] += local[G + k];
          d_in[2 * G + k] += local[G + k];  // b and beta_x: both added to z
        }
      }
    }
  }
};

}  // namespace

REGISTER_KERNEL_BUILDER(Name("RnnappsLstm").Device(DEVICE_CPU), LstmOp);
REGISTER_KERNEL_BUILDER(Name("RnnappsLstmGrad").Device(DEVICE_CPU), LstmGradOp);
