// Package osproc asks after and signals other processes by ID, the one
// place that knows how each operating system does it: Unix signals, and
// on Windows (which has none) what can be done without them.
package osproc

import "errors"

// ErrNotRunning is returned when no process has the ID.
var ErrNotRunning = errors.New("osproc: no such process")

// ErrUnsupported is returned where the operating system cannot do what
// was asked (a graceful stop on Windows).
var ErrUnsupported = errors.New("osproc: not supported on this operating system")
