{
  "targets": [
    {
      "target_name": "instance_lock",
      "sources": ["native/binding.cc", "native/sha256.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-O2", "-Wall", "-Wextra", "-Wunused-parameter"],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
        "WARNING_CFLAGS": ["-Wall", "-Wextra", "-Wunused-parameter"],
        "MACOSX_DEPLOYMENT_TARGET": "11.0"
      },
      "conditions": [
        ["OS=='win'", {
          "sources": [
            "native/win32/common.cc",
            "native/win32/mutex.cc",
            "native/win32/pipe.cc",
            "native/win32/process.cc",
            "native/win32/waiter.cc"
          ],
          "defines": ["UNICODE", "_UNICODE", "WIN32_LEAN_AND_MEAN"]
        }, {
          "sources": [
            "native/posix/env.cc",
            "native/posix/exports.cc",
            "native/posix/lockfile.cc",
            "native/posix/peer.cc",
            "native/posix/process.cc",
            "native/posix/record.cc",
            "native/posix/wait.cc"
          ]
        }]
      ]
    }
  ]
}
