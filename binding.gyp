{
  "targets": [
    {
      "target_name": "xattr",
      "sources": ["src/native/xattr.c", "src/native/dirfd.c", "src/native/tmpfile.c"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
