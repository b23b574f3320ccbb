import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

export default defineConfig({
  resolve: {
    // The first matching entry wins: the subpath before the bare name.
    alias: {
      "effect-worker-pool/testing": fileURLToPath(new URL("./src/testing/index.ts", import.meta.url)),
      "effect-worker-pool/remote": fileURLToPath(new URL("./src/remote/index.ts", import.meta.url)),
      "effect-worker-pool/child": fileURLToPath(new URL("./src/child.ts", import.meta.url)),
      "effect-worker-pool": fileURLToPath(new URL("./src/index.ts", import.meta.url))
    }
  },
  test: {
    include: ["test/**/*.test.ts"]
  }
})
