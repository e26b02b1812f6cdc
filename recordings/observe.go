package recordings

import (
	"context"
	"time"
)

// Observe reports one store operation: its name, when it began, how it
// ended.
type Observe func(op string, start time.Time, err error)

// Observed returns store with every operation reported to observe
// (latency metrics): create, open, delete, complete, abort, and each read.
func Observed(store Store, observe Observe) Store { return &observed{Store: store, observe: observe} }

type observed struct {
	Store
	observe Observe
}

func (s *observed) Create(ctx context.Context, key string) (Upload, error) {
	start := time.Now()
	up, err := s.Store.Create(ctx, key)
	s.observe("create", start, err)
	if err != nil {
		return nil, err
	}
	return &observedUpload{Upload: up, observe: s.observe}, nil
}

func (s *observed) Open(ctx context.Context, key string) (Object, error) {
	start := time.Now()
	obj, err := s.Store.Open(ctx, key)
	s.observe("open", start, err)
	if err != nil {
		return nil, err
	}
	return &observedObject{Object: obj, observe: s.observe}, nil
}

func (s *observed) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := s.Store.Delete(ctx, key)
	s.observe("delete", start, err)
	return err
}

type observedUpload struct {
	Upload
	observe Observe
}

func (u *observedUpload) Complete(ctx context.Context) error {
	start := time.Now()
	err := u.Upload.Complete(ctx)
	u.observe("complete", start, err)
	return err
}

func (u *observedUpload) Abort(ctx context.Context) error {
	start := time.Now()
	err := u.Upload.Abort(ctx)
	u.observe("abort", start, err)
	return err
}

type observedObject struct {
	Object
	observe Observe
}

func (o *observedObject) ReadAt(p []byte, off int64) (int, error) {
	start := time.Now()
	n, err := o.Object.ReadAt(p, off)
	if n == len(p) {
		err = nil // io.EOF at the very end is a whole read
	}
	o.observe("read", start, err)
	return n, err
}
