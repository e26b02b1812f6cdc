package webrtc

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/pion/logging"
)

// pionLogs gives pion's log lines to the engine's logger: pion's errors
// as warnings, its warnings at debug level, the rest dropped. It keeps
// one logger per scope for the engine's life, where pion's default makes
// five log.Loggers per scope for every PeerConnection.
type pionLogs struct {
	log    *slog.Logger
	mu     sync.Mutex
	scopes map[string]*pionLog
}

func newPionLogs(log *slog.Logger) *pionLogs {
	return &pionLogs{log: log, scopes: map[string]*pionLog{}}
}

func (f *pionLogs) NewLogger(scope string) logging.LeveledLogger {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.scopes[scope]
	if !ok {
		l = &pionLog{log: f.log.With("pion", scope)}
		f.scopes[scope] = l
	}
	return l
}

type pionLog struct{ log *slog.Logger }

func (l *pionLog) at(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l *pionLog) atf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (*pionLog) Trace(string)          {}
func (*pionLog) Tracef(string, ...any) {}
func (*pionLog) Debug(string)          {}
func (*pionLog) Debugf(string, ...any) {}
func (*pionLog) Info(string)           {}
func (*pionLog) Infof(string, ...any)  {}
func (l *pionLog) Warn(msg string)     { l.at(slog.LevelDebug, msg) }
func (l *pionLog) Warnf(f string, a ...any) {
	l.atf(slog.LevelDebug, f, a...)
}
func (l *pionLog) Error(msg string)          { l.at(slog.LevelWarn, msg) }
func (l *pionLog) Errorf(f string, a ...any) { l.atf(slog.LevelWarn, f, a...) }
