{
  # Built with `npm run build:native` (node-gyp rebuild --directory native)
  # against the installed Node headers (npm config nodedir); output:
  # native/build/Release/pqtun.node, loaded by firmware/dataplane/tun/tun.ts.
  "targets": [
    {
      "target_name": "pqtun",
      "sources": ["pqtun.c", "pqcrypto.c", "sk.c", "mlkem.c"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"]
    }
  ]
}
