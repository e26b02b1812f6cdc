package main

import (
	"flag"
	"os"
)

// setMark is what help shows for a secret setting that has a value.
const setMark = "(set)"

// secretFlag registers a string flag whose default comes from the variable
// env, and whose help says only whether it is set: help must not print a
// password, key or database URL.
func secretFlag(fs *flag.FlagSet, name, env, help string) *string {
	p := fs.String(name, os.Getenv(env), help+" ["+env+"]")
	hideDefault(fs, name)
	return p
}

// hideDefault makes fs's help show setMark instead of the flag's default.
// The value itself is untouched: DefValue is only what help prints.
func hideDefault(fs *flag.FlagSet, name string) {
	if f := fs.Lookup(name); f != nil && f.DefValue != "" {
		f.DefValue = setMark
	}
}
