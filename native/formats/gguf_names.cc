// llama.cpp tensor names -> Hugging Face transformers names, for the architectures whose
// GGUF files come from llama.cpp's convert_hf_to_gguf.py with the standard names of
// gguf-py/gguf/tensor_mapping.py, and the row permutation that converter applies to Q and K.
#include <cstring>
#include <string>
#include <vector>

#include "gguf.h"

namespace mother {

namespace {

struct NamePair {
  const char* gguf;
  const char* hf;
};

// Outside the blocks.
const NamePair kTop[] = {
    {"token_embd", "model.embed_tokens"},
    {"output_norm", "model.norm"},
    {"output", "lm_head"},
};

// Inside block N: blk.N.<gguf> -> model.layers.N.<hf>. Llama-style decoders (llama, mistral,
// qwen2, qwen3, gemma).
const NamePair kLlamaBlock[] = {
    {"attn_norm", "input_layernorm"},
    {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"},
    {"attn_q_norm", "self_attn.q_norm"},  // qwen3, gemma3
    {"attn_k_norm", "self_attn.k_norm"},
    {"ffn_norm", "post_attention_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},
    {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};

// gemma2 / gemma3: four norms per block.
const NamePair kGemma2Block[] = {
    {"attn_norm", "input_layernorm"},
    {"post_attention_norm", "post_attention_layernorm"},
    {"ffn_norm", "pre_feedforward_layernorm"},
    {"post_ffw_norm", "post_feedforward_layernorm"},
    {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"},
    {"attn_q_norm", "self_attn.q_norm"},
    {"attn_k_norm", "self_attn.k_norm"},
    {"ffn_gate", "mlp.gate_proj"},
    {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};

// phi3: fused QKV (self_attn.qkv_proj) and fused gate/up (mlp.gate_up_proj, stored as ffn_up).
const NamePair kPhi3Block[] = {
    {"attn_norm", "input_layernorm"},
    {"attn_qkv", "self_attn.qkv_proj"},
    {"attn_output", "self_attn.o_proj"},
    {"ffn_norm", "post_attention_layernorm"},
    {"ffn_up", "mlp.gate_up_proj"},
    {"ffn_down", "mlp.down_proj"},
};

template <size_t N>
const char* lookup(const NamePair (&table)[N], const std::string& key) {
  for (const NamePair& p : table)
    if (key == p.gguf) return p.hf;
  return nullptr;
}

}  // namespace

bool gguf_permutes_qk(const std::string& arch) { return arch == "llama" || arch == "mistral"; }

std::string gguf_hf_name(const std::string& arch, const std::string& name) {
  const bool llama_like = arch == "llama" || arch == "mistral" || arch == "qwen2" || arch == "qwen3" || arch == "gemma";
  const bool gemma2 = arch == "gemma2" || arch == "gemma3";
  const bool phi3 = arch == "phi3";
  if (!llama_like && !gemma2 && !phi3) return "";
  // the base and the suffix (".weight", ".bias")
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return "";
  const std::string suffix = name.substr(dot);
  if (suffix != ".weight" && suffix != ".bias") return "";
  const std::string base = name.substr(0, dot);
  if (const char* hf = lookup(kTop, base)) return std::string(hf) + suffix;
  if (base.compare(0, 4, "blk.") != 0) return "";
  size_t i = 4;
  while (i < base.size() && base[i] >= '0' && base[i] <= '9') ++i;
  if (i == 4 || i >= base.size() || base[i] != '.') return "";
  const std::string layer = base.substr(4, i - 4);
  const std::string part = base.substr(i + 1);
  const char* hf = phi3 ? lookup(kPhi3Block, part) : gemma2 ? lookup(kGemma2Block, part) : lookup(kLlamaBlock, part);
  if (!hf) return "";
  return "model.layers." + layer + "." + hf + suffix;
}

std::vector<uint32_t> gguf_qk_row_map(uint64_t rows, uint64_t n_head) {
  std::vector<uint32_t> map;
  if (n_head == 0 || rows % (2 * n_head) != 0) return map;
  const uint64_t hd = rows / n_head, half = hd / 2;
  map.resize(static_cast<size_t>(rows));
  for (uint64_t h = 0; h < n_head; ++h)
    for (uint64_t j = 0; j < 2; ++j)
      for (uint64_t i = 0; i < half; ++i) map[h * hd + j * half + i] = static_cast<uint32_t>(h * hd + 2 * i + j);
  return map;
}

}  // namespace mother
