# The addon only: what `npm install` builds from source when no prebuild fits. The test-only
# GPU emulator (native/gpu/emulator_backend.cc) is built by `npm run build:emulator`.
{
  "targets": [
    {
      "target_name": "mother",
      "sources": [
        "native/core/error.cc",
        "native/core/json.cc",
        "native/core/dtype.cc",
        "native/core/mapped_file.cc",
        "native/formats/tensor_view.cc",
        "native/formats/registry.cc",
        "native/formats/shard_index.cc",
        "native/formats/safetensors.cc",
        "native/formats/zip.cc",
        "native/formats/pickle.cc",
        "native/formats/pytorch.cc",
        "native/formats/gguf.cc",
        "native/formats/gguf_names.cc",
        "native/stats/decode.cc",
        "native/stats/quant_grid.cc",
        "native/stats/row_hash.cc",
        "native/stats/spectrum.cc",
        "native/formats/protobuf.cc",
        "native/formats/onnx.cc",
        "native/stats/kernels_scalar.cc",
        "native/stats/kernels_avx2.cc",
        "native/stats/kernels_avx512.cc",
        "native/stats/kernels_neon.cc",
        "native/stats/quant_scalar.cc",
        "native/stats/quant_avx2.cc",
        "native/stats/dispatch.cc",
        "native/stats/model_stats.cc",
        "native/stats/model_stats_gpu.cc",
        "native/pairwise/pair_plan.cc",
        "native/pairwise/pairwise.cc",
        "native/pairwise/pairwise_gpu.cc",
        "native/pairwise/shift_null.cc",
        "native/pairwise/lora_products.cc",
        "native/pairwise/diff_moments.cc",
        "native/pairwise/svd.cc",
        "native/pairwise/svd_kernels.cc",
        "native/gpu/gpu_backend.cc",
        "native/gpu/staging.cc",
        "native/bench/plain_read.cc",
        "native/addon/init.cc",
        "native/addon/args.cc",
        "native/addon/errors.cc",
        "native/addon/progress.cc",
        "native/addon/layouts.cc",
        "native/addon/simd.cc",
        "native/addon/formats.cc",
        "native/addon/op_scan.cc",
        "native/addon/op_inspect.cc",
        "native/addon/op_row_hashes.cc",
        "native/addon/op_spectra.cc",
        "native/addon/op_lora_products.cc",
        "native/addon/op_diff_moments.cc",
        "native/addon/op_pairwise.cc",
        "native/addon/op_gpu_open.cc",
        "native/addon/testing.cc",
        "native/addon/testing_svd.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags!": [
        "-fno-exceptions"
      ],
      "cflags_cc!": [
        "-fno-exceptions",
        "-fno-rtti"
      ],
      "cflags": [
        "-O3",
        "-Wall",
        "-Wextra"
      ],
      "cflags_cc": [
        "-std=c++17",
        "-O3",
        "-fexceptions",
        "-Wall",
        "-Wextra",
        "-Wno-missing-field-initializers"
      ],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "MACOSX_DEPLOYMENT_TARGET": "11.0"
      },
      "libraries": [
        "-ldl"
      ]
    }
  ]
}
