package sip

import (
	"sync"

	"github.com/emiago/sipgo/sip"
)

// openInvites are the INVITEs without a To tag being answered, by what
// RFC 3261 §8.2.2.2 matches a merged request on: Call-ID, From tag and
// CSeq. A second INVITE with the same three and another branch is the
// same request come again by another path (a fork that merged, or a loop
// through a front-end): 482, or it would become a second call.
type openInvites struct {
	mu sync.Mutex
	m  map[string]string // key → the branch of the INVITE being answered
}

// open registers req while it is answered; merged reports a copy of an
// INVITE already open, which must be refused. release ends req's turn.
func (o *openInvites) open(req *sip.Request) (release func(), merged bool) {
	from, cseq := req.From(), req.CSeq()
	if from == nil || cseq == nil || req.CallID() == nil {
		return func() {}, false
	}
	tag, _ := from.Params.Get("tag")
	key := req.CallID().Value() + "\x00" + tag + "\x00" + cseq.Value()
	branch := ""
	if via := req.Via(); via != nil {
		branch, _ = via.Params.Get("branch")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[string]string{}
	}
	if b, ok := o.m[key]; ok && b != branch {
		return func() {}, true
	}
	o.m[key] = branch
	return func() {
		o.mu.Lock()
		if o.m[key] == branch {
			delete(o.m, key)
		}
		o.mu.Unlock()
	}, false
}
