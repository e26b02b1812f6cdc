package switchboard

// QualityScorer estimates each direction's MOS and names a call's quality
// problems from its record and samples, when it ends.
type QualityScorer func(c *Call, samples []QualitySample) (fromCallerMOS, toCallerMOS float64, tags []string)

// CallObserver hears each call's events and its final record, for
// metrics. It is called on the call's goroutine and must not block.
type CallObserver interface {
	CallEvent(e *CallEvent)
	CallEnded(c *Call)
}

// MediaCount is what one direction of a call relayed since the last count:
// packets, and packets lost before they reached switchboard. Call control
// counts while the call goes on, so totals move before calls end.
type MediaCount struct {
	Packets uint64
	Lost    uint64
}
