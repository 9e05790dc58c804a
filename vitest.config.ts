import { defineConfig } from 'vitest/config';

// Two projects: fast in-process tests ("unit") and tests that need root,
// network namespaces and the strongSwan/libreswan peer roots ("interop").
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/interop/**', 'test/image/**', 'node_modules/**'],
          testTimeout: 30_000,
        },
      },
      {
        // Firmware images booted in QEMU (image/, qemu/): needs root, the
        // built images (npm run image) and minutes of TCG time; one file at a time.
        test: {
          name: 'image',
          include: ['test/image/**/*.test.ts'],
          testTimeout: 600_000,
          hookTimeout: 600_000,
          fileParallelism: false,
          sequence: { concurrent: false },
        },
      },
      {
        // Web admin in Debian's headless Chromium (playwright-core, /usr/bin/chromium);
        // files are *.e2e.ts so the unit project does not pick them up. Writes docs/screenshots/.
        test: {
          name: 'e2e',
          include: ['test/webui/e2e/**/*.e2e.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
          sequence: { concurrent: false },
        },
      },
      {
        test: {
          name: 'interop',
          include: ['test/interop/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
          sequence: { concurrent: false },
        },
      },
    ],
  },
});
