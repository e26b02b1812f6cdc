package main

import (
	"math"
	"strconv"
	"strings"
)

// relayDelayMetric is the service's own measure of the delay it adds to
// each relayed packet, from the kernel's receive timestamp to the hand-over
// to the kernel on the other leg, by direction.
const relayDelayMetric = "switchboard_media_relay_delay_seconds_bucket"

// histogram is one direction's cumulative buckets, as /metrics gives them.
type histogram struct {
	bounds []float64 // upper bounds, ascending; the last is +Inf
	counts []float64 // cumulative
}

// relayDelayLine takes one line of /metrics into hs if it is a bucket of
// relayDelayMetric, and reports whether it was.
func relayDelayLine(hs map[string]*histogram, name, value string) bool {
	labels, ok := strings.CutPrefix(name, relayDelayMetric+"{")
	if !ok {
		return false
	}
	dir, le := label(labels, "direction"), label(labels, "le")
	bound, err1 := strconv.ParseFloat(le, 64)
	count, err2 := strconv.ParseFloat(strings.TrimSpace(value), 64)
	if dir == "" || err1 != nil || err2 != nil {
		return true // not ours to judge: the runtime figures still count
	}
	h := hs[dir]
	if h == nil {
		h = &histogram{}
		hs[dir] = h
	}
	h.bounds, h.counts = append(h.bounds, bound), append(h.counts, count)
	return true
}

// label is the value of name in a Prometheus label set `a="x",b="y"}`.
func label(labels, name string) string {
	_, rest, ok := strings.Cut(labels, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// since is what h counted after before did: the run's own packets.
func (h *histogram) since(before *histogram) *histogram {
	out := &histogram{bounds: h.bounds, counts: append([]float64(nil), h.counts...)}
	if before != nil && len(before.counts) == len(h.counts) {
		for i := range out.counts {
			out.counts[i] -= before.counts[i]
		}
	}
	return out
}

// quantile estimates the q-quantile in seconds, interpolating linearly
// within the bucket it falls in (as Prometheus's histogram_quantile does);
// NaN with no packets. A quantile in the +Inf bucket is +Inf: more than
// the last finite bound.
func (h *histogram) quantile(q float64) float64 {
	if h == nil || len(h.counts) == 0 || h.counts[len(h.counts)-1] == 0 {
		return math.NaN()
	}
	rank := q * h.counts[len(h.counts)-1]
	lower, below := 0.0, 0.0
	for i, c := range h.counts {
		if c >= rank {
			if math.IsInf(h.bounds[i], 1) {
				return math.Inf(1)
			}
			if c == below {
				return h.bounds[i]
			}
			return lower + (h.bounds[i]-lower)*(rank-below)/(c-below)
		}
		lower, below = h.bounds[i], c
	}
	return lower
}

// serviceDelay is the delay the service itself added in one direction.
type serviceDelay struct {
	Packets float64 `json:"packets"`
	P50MS   float64 `json:"p50_ms"`
	P99MS   float64 `json:"p99_ms"`
	P999MS  float64 `json:"p999_ms"`
}

func newServiceDelay(after, before *histogram) *serviceDelay {
	if after == nil || len(after.counts) == 0 {
		return nil
	}
	h := after.since(before)
	if h.counts[len(h.counts)-1] <= 0 {
		return nil // nothing relayed, or nothing the service could time
	}
	// JSON has no infinity: beyond the last bound reads as that bound.
	top := h.bounds[max(len(h.bounds)-2, 0)]
	q := func(p float64) float64 { return 1000 * min(h.quantile(p), top) }
	return &serviceDelay{Packets: h.counts[len(h.counts)-1], P50MS: q(.5), P99MS: q(.99), P999MS: q(.999)}
}
