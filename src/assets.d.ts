declare module "*.so" {
  const path: string;
  export default path;
}

/** The git commit the binary was built from, set by scripts/build.ts. */
declare const __COMMIT__: string | undefined;

declare module "*/daemonize-monitor" {
  const path: string;
  export default path;
}
