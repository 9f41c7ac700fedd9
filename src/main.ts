// The entry. The refusal of a privileged exec (guard.ts) runs first; everything else, the native
// library included, is loaded only after it.
import "./guard";

await import("./dispatch");
