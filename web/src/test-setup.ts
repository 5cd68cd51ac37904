import { cleanup, configure } from "@testing-library/react";
import { afterEach } from "vitest";

// Ant Design renders slowly in jsdom on a busy 2-core machine: wait up to 5 s for a screen.
configure({ asyncUtilTimeout: 5000 });

afterEach(() => {
  cleanup();
  sessionStorage.clear();
});

// Ant Design's responsive grid asks for media queries, which jsdom lacks.
if (!window.matchMedia) {
  window.matchMedia = (query: string) =>
    ({
      matches: false,
      media: query,
      onchange: null,
      addListener: () => {},
      removeListener: () => {},
      addEventListener: () => {},
      removeEventListener: () => {},
      dispatchEvent: () => false,
    }) as MediaQueryList;
}

// Ant Design measures some elements as they resize; jsdom has no layout to observe.
if (!("ResizeObserver" in window)) {
  class NoResizeObserver {
    observe() {}
    unobserve() {}
    disconnect() {}
  }
  Object.assign(window, { ResizeObserver: NoResizeObserver });
  Object.assign(globalThis, { ResizeObserver: NoResizeObserver });
}
