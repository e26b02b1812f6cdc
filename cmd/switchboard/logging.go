package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Logs are JSON lines (or text, for a person at a terminal). Each part of
// the service logs with a "component" attribute (sip, webrtc, api, calls);
// a level can be set per component, so that SIP can be at debug while the
// rest stays at info.

// parseLevels reads "sip=debug,api=warn" into levels by component.
func parseLevels(s string) (map[string]slog.Level, error) {
	out := map[string]slog.Level{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, level, ok := strings.Cut(part, "=")
		var l slog.Level
		if !ok || strings.TrimSpace(name) == "" || l.UnmarshalText([]byte(strings.TrimSpace(level))) != nil {
			return nil, fmt.Errorf("%q is not component=level (debug, info, warn, error)", part)
		}
		out[strings.TrimSpace(name)] = l
	}
	return out, nil
}

func newLogger(w io.Writer, level, format string, components map[string]slog.Level) *slog.Logger {
	var base slog.Level
	if err := base.UnmarshalText([]byte(level)); err != nil {
		base = slog.LevelInfo
	}
	lowest := base
	for _, l := range components {
		lowest = min(lowest, l)
	}
	opts := &slog.HandlerOptions{Level: lowest}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(&componentLevels{Handler: h, level: base, levels: components})
}

// componentLevels lets records through at their component's level, or at
// the base level when the logger has no component or its component none.
type componentLevels struct {
	slog.Handler
	level  slog.Level
	levels map[string]slog.Level
}

func (h *componentLevels) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.Handler.Enabled(ctx, l)
}

func (h *componentLevels) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	for _, a := range attrs {
		if l, ok := h.levels[a.Value.String()]; ok && a.Key == "component" {
			c.level = l
		}
	}
	c.Handler = h.Handler.WithAttrs(attrs)
	return &c
}

func (h *componentLevels) WithGroup(name string) slog.Handler {
	c := *h
	c.Handler = h.Handler.WithGroup(name)
	return &c
}
