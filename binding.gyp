{
  "targets": [
    {
      "target_name": "xattr",
      "sources": ["src/native/xattr.c", "src/native/dirfd.c", "src/native/tmpfile.c", "src/native/seek.c", "src/native/copy.c"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
