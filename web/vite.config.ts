/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The gateway serves dist/ (services/gateway/console.py): index.html for every deep link,
// dist/assets/* with hashed names cached for good. `npm run dev` proxies the API to a gateway.
export default defineConfig({
  plugins: [react()],
  build: {
    // Nothing inlined as data: URLs beyond tiny images; scripts only from files (CSP script-src 'self').
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 2000,
    rolldownOptions: {
      output: {
        codeSplitting: {
          groups: [
            // React, the router and the query cache change far less often than the console: a
            // chunk of their own keeps its hashed name (and the browser's cached copy) across
            // releases. Only libraries every screen needs whole; Ant Design stays split by
            // component, so a screen loads only the components it uses.
            {
              name: "react",
              test: /node_modules[\\/](react|react-dom|scheduler|react-router|react-router-dom|@tanstack[\\/][^\\/]+|openapi-fetch)[\\/]/,
            },
          ],
        },
      },
    },
  },
  server: {
    proxy: {
      "/api": process.env.GATEWAY_URL ?? "http://127.0.0.1:8080",
      "/track": process.env.GATEWAY_URL ?? "http://127.0.0.1:8080",
    },
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test-setup.ts"],
    // The first render of Ant Design in jsdom takes seconds on a busy 2-core machine.
    testTimeout: 20_000,
  },
});
