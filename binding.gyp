{
  "targets": [
    {
      "target_name": "xattr",
      "sources": ["src/native/xattr.c"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
