package controlplane

import (
	"context"
	"log/slog"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// etcdLogCore sends the embedded etcd's zap logs (warnings and worse) to
// the control plane's slog logger, so an operator reads one log format.
// Once closing is set, it drops them: etcd reports its own listeners
// being closed on shutdown as errors.
type etcdLogCore struct {
	log     *slog.Logger
	fields  []zapcore.Field
	closing *atomic.Bool
}

func newEtcdLogger(log *slog.Logger, closing *atomic.Bool) *zap.Logger {
	return zap.New(&etcdLogCore{log: log.With("component", "etcd"), closing: closing})
}

// Enabled implements zapcore.Core.
func (c *etcdLogCore) Enabled(l zapcore.Level) bool { return l >= zapcore.WarnLevel }

// With implements zapcore.Core.
func (c *etcdLogCore) With(fields []zapcore.Field) zapcore.Core {
	return &etcdLogCore{log: c.log, fields: append(append([]zapcore.Field(nil), c.fields...), fields...), closing: c.closing}
}

// Check implements zapcore.Core.
func (c *etcdLogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

// Write implements zapcore.Core.
func (c *etcdLogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	if c.closing.Load() && e.Level < zapcore.DPanicLevel {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fields {
		f.AddTo(enc)
	}
	attrs := make([]any, 0, 2*len(enc.Fields))
	for k, v := range enc.Fields {
		attrs = append(attrs, k, v)
	}
	level := slog.LevelWarn
	if e.Level >= zapcore.ErrorLevel {
		level = slog.LevelError
	}
	c.log.Log(context.Background(), level, e.Message, attrs...)
	return nil
}

// Sync implements zapcore.Core; slog handlers do not buffer.
func (c *etcdLogCore) Sync() error { return nil }
