package main

import (
	"os"
	"runtime/debug"
)

// defaultGCPercent is the garbage collector's target when GOGC is not
// set: the heap may grow to 1.5 times what is live before a collection,
// instead of Go's default of twice. Calls in progress allocate little
// (the relay paths nothing), so collections stay rare either way, and
// each bridged call costs about a quarter less memory for no CPU the load
// tool can tell (docs/performance.md). GOGC set in the environment wins.
const defaultGCPercent = 50

// tuneGC sets the collector's target, unless GOGC is set.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}
