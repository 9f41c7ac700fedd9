// The release build's flags, shared with the benchmark's floor so that both are built alike.
// --minify --bytecode --format=esm start fastest. Without the --no-compile-autoload flags a
// compiled program reads .env and bunfig.toml from the working directory at start-up: anyone
// who can write there could change the daemon's environment or, through a preload, run code as root
// (tsconfig.json and package.json are off by default; said here so a new default cannot turn them on).
// A launch runs each function a few times at most: compiling any of it is wasted, and JIT threads
// competing with the launch cost about 1 ms, so the tier-up thresholds are scaled out of reach.
export const FLAGS = [
  "--compile", "--splitting", "--minify", "--bytecode", "--format=esm",
  "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig", "--no-compile-autoload-tsconfig", "--no-compile-autoload-package-json",
  "--compile-jit-policy=1000",
];
