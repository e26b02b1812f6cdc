package sip

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// The RFC 4475 torture messages (testdata/rfc4475, whose README says where
// they come from and why each answer is the right one), each sent to a
// running server as it is but for the top Via's sent-by, which names the
// test's socket so that the answer comes back to it.

// tortureNumber is the one number the trunk serves: the Request-URI user of
// most torture INVITEs, so that they get past routing to the checks RFC
// 4475 is about (the body, Accept) or reach call control.
const tortureNumber = "user"

// A torture case: the message, how it is sent, and the answers it must get.
type tortureCase struct {
	file      string
	transport string // "udp" (default) or "tcp"
	// want are the final responses' status codes in order; none: the
	// message gets no answer at all (over TCP: nor is the connection
	// closed, unless closed is set).
	want   []int
	closed bool     // tcp: the server closes the connection instead
	has    []string // text the (first) final response must carry
	why    string
}

var tortureCases = []tortureCase{
	// 3.1.1 Valid messages: each request gets a proper final response.
	{file: "wsinv", want: []int{481}, why: "a well-formed INVITE with a To tag: a dialog we do not have"},
	{file: "intmeth", want: []int{501}, has: []string{"Allow: "}, why: "a method nobody defined"},
	{file: "esc01", want: []int{404}, why: "escaped Request-URI user: not a number of the trunk"},
	{file: "escnull", want: []int{405}, has: []string{"Allow: "}, why: "REGISTER: a method we know and do not take"},
	{file: "esc02", want: []int{501}, why: "RE%47IST%45R is not REGISTER (no escapes in a method): unknown"},
	{file: "lwsdisp", want: []int{200}, why: "OPTIONS, display name without space before <"},
	{file: "longreq", want: []int{486}, why: "an INVITE to our number: call control answers; the 4 KB answer goes over UDP"},
	{file: "longreq", transport: "tcp", want: []int{486}, why: "the same over TCP, as its Vias say it came"},
	{file: "dblreq", want: []int{405}, has: []string{"CSeq: 8 REGISTER"}, why: "the REGISTER; its Content-Length ends the datagram's message, the INVITE after it is discarded"},
	{file: "semiuri", want: []int{200}, why: "OPTIONS, ; in the Request-URI user"},
	{file: "transports", want: []int{200}, why: "OPTIONS, Vias of unknown transports below ours"},
	{file: "mpart01", want: []int{405}, why: "MESSAGE with a binary multipart body"},
	{file: "unreason", why: "a response: a server answers no response"},
	{file: "noreason", why: "a response: a server answers no response"},

	// 3.1.2 Invalid messages.
	{file: "badinv01", want: []int{400}, why: "empty Via and Contact parameters"},
	{file: "clerr", want: []int{400}, why: "Content-Length beyond the datagram"},
	{file: "clerr", transport: "tcp", why: "Content-Length beyond what came: the stream waits for the rest"},
	{file: "ncl", want: []int{400}, why: "negative Content-Length"},
	{file: "ncl", transport: "tcp", closed: true, why: "negative Content-Length: where the next message starts is unknown"},
	{file: "scalar02", want: []int{400}, why: "CSeq beyond 2**32-1"},
	{file: "scalarlg", why: "a response (with overlarge values): discarded"},
	{file: "quotbal", want: []int{400}, why: "unterminated quoted display name"},
	{file: "ltgtruri", want: []int{400}, why: "Request-URI in <>"},
	{file: "lwsruri", want: []int{400}, why: "whitespace inside the Request-URI"},
	{file: "lwsstart", want: []int{400}, why: "two spaces between request-line elements"},
	{file: "trws", want: []int{400}, why: "spaces after the SIP version"},
	{file: "escruri", want: []int{486}, why: "escaped headers in the Request-URI are ignored (RFC 4475 allows it): call control answers"},
	{file: "baddate", want: []int{486}, why: "a Date not in GMT: Date is not used, the INVITE goes on to call control"},
	{file: "regbadct", want: []int{405}, why: "REGISTER is refused by method before its Contact is read"},
	{file: "badaspec", want: []int{400}, why: "spaces inside <> of To"},
	{file: "baddn", want: []int{400}, why: "unquoted display names with commas"},
	{file: "badvers", want: []int{505}, has: []string{"SIP/2.0 505 "}, why: "SIP/7.0"},
	{file: "mismatch01", want: []int{400}, why: "OPTIONS with CSeq INVITE"},
	{file: "mismatch02", want: []int{501}, why: "unknown method with CSeq INVITE: 501 rather than 400, as RFC 4475 prefers"},
	{file: "bigcode", why: "a response (with a status code beyond 32 bits): discarded"},

	// 3.2 Transaction layer.
	{file: "badbranch", want: []int{200}, why: "branch that is the magic cookie alone: matched as RFC 2543, answered"},

	// 3.3 Application layer.
	{file: "insuf", want: []int{400}, why: "no Call-ID, From, To"},
	{file: "unkscm", want: []int{416}, why: "Request-URI scheme nobody knows"},
	{file: "novelsc", want: []int{416}, why: "Request-URI scheme soap.beep"},
	{file: "unksm2", want: []int{405}, why: "REGISTER with URIs of unknown schemes: refused by method"},
	{file: "bext01", want: []int{420}, has: []string{"Unsupported: nothingsupportsthis, nothingsupportsthiseither"}, why: "Require of unknown extensions (Proxy-Require is a proxy's)"},
	{file: "invut", want: []int{415}, has: []string{"Accept: application/sdp"}, why: "a body of unknown type"},
	{file: "regaut01", want: []int{405}, why: "REGISTER with an unknown Authorization scheme"},
	{file: "multi01", want: []int{400}, why: "two Call-IDs, CSeqs, Tos, Froms, Max-Forwards"},
	{file: "mcl01", want: []int{400}, why: "two Content-Lengths"},
	{file: "mcl01", transport: "tcp", closed: true, why: "two Content-Lengths: the stream's framing is lost"},
	{file: "bcast", why: "a response: discarded"},
	{file: "zeromf", want: []int{200}, why: "Max-Forwards 0 at its target: a UAS answers (483 is a proxy's)"},
	{file: "cparam01", want: []int{405}, why: "REGISTER"},
	{file: "cparam02", want: []int{405}, why: "REGISTER"},
	{file: "regescrt", want: []int{405}, why: "REGISTER"},
	{file: "sdp01", want: []int{406}, why: "Accept leaves out application/sdp, the body of our answer"},

	// 3.4 Backward compatibility.
	{file: "inv2543", want: []int{404}, why: "RFC 2543 INVITE (no branch, From tag, Max-Forwards, Content-Length, Contact): routed, UserB is not ours"},
}

// TestRFC4475TortureMessages sends each of RFC 4475's 49 messages to a
// running server and checks the answer each must get.
func TestRFC4475TortureMessages(t *testing.T) {
	trunk := &sb.Trunk{ID: sb.NewID(), Name: "torture", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Numbers: []string{tortureNumber}}
	ts := mustServer(t, &directory{trunks: []*sb.Trunk{trunk}}, Config{})
	busyCallControl(t, ts)

	files, err := filepath.Glob("../testdata/rfc4475/*.dat")
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, c := range tortureCases {
		covered[c.file] = true
	}
	if len(files) != 49 || len(covered) != 49 {
		t.Fatalf("%d messages in testdata and %d in the table, want RFC 4475's 49", len(files), len(covered))
	}
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".dat"); !covered[name] {
			t.Errorf("%s has no case", name)
		}
	}

	// Every message is sent first, each from its own socket, so that the
	// waits for answers that must not come overlap.
	sent := make([]*tortureSent, len(tortureCases))
	for i, c := range tortureCases {
		raw, err := os.ReadFile(filepath.Join("../testdata/rfc4475", c.file+".dat"))
		if err != nil {
			t.Fatal(err)
		}
		sent[i] = mustSendTorture(t, ts, c, raw)
	}
	for i, c := range tortureCases {
		name := c.file
		if c.transport == "tcp" {
			name += "/tcp"
		}
		t.Run(name, func(t *testing.T) { sent[i].check(t, c) })
	}
}

// busyCallControl answers every call the torture messages place with 486,
// as call control does when every operator is busy, and drains the
// refusals recorded.
func busyCallControl(t *testing.T, ts *testServer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case in := <-ts.calls:
				wg.Add(1)
				go func() {
					defer wg.Done()
					in.Leg.Reject(ctx, 486, "every operator is busy")
				}()
			case <-ts.refused:
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// tortureQuiet is how long a message that must get no answer is given to
// get one anyway.
const tortureQuiet = time.Second

// tortureSent is a message sent, on its own connection.
type tortureSent struct {
	conn net.Conn
	r    *bufio.Reader // tcp
	at   time.Time
}

// mustSendTorture sends raw as c says: in one datagram, or on a new TCP
// connection.
func mustSendTorture(t *testing.T, ts *testServer, c tortureCase, raw []byte) *tortureSent {
	t.Helper()
	network := "udp"
	if c.transport == "tcp" {
		network = "tcp"
	}
	conn, err := net.Dial(network, ts.addr(network))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write(viaTo(raw, conn.LocalAddr().String())); err != nil {
		t.Fatal(err)
	}
	return &tortureSent{conn: conn, r: bufio.NewReader(conn), at: time.Now()}
}

// next reads the next message that comes back: a datagram, or one framed
// by its Content-Length on a stream.
func (s *tortureSent) next(c tortureCase) (string, error) {
	deadline := time.Now().Add(5 * time.Second)
	if len(c.want) == 0 {
		// A deadline already past would not even look at what came.
		deadline = time.Now().Add(max(time.Until(s.at.Add(tortureQuiet)), 10*time.Millisecond))
	}
	s.conn.SetReadDeadline(deadline)
	if c.transport == "tcp" {
		return readStreamMessage(s.r)
	}
	buf := make([]byte, 65536)
	n, err := s.conn.Read(buf)
	return string(buf[:n]), err
}

// check reads the final responses that came back and compares them with
// those c wants; on a stream, also whether the server closed it.
func (s *tortureSent) check(t *testing.T, c tortureCase) {
	var finals []string
	var readErr error
	for len(finals) < len(c.want) || len(c.want) == 0 {
		res, err := s.next(c)
		if err != nil {
			readErr = err
			break
		}
		if statusOf(res) >= 200 {
			finals = append(finals, res)
		}
	}
	if readErr != nil && len(finals) < len(c.want) {
		t.Logf("reading: %v", readErr)
	}
	checkFinals(t, c, finals)
	var timeout net.Error
	timedOut := errors.As(readErr, &timeout) && timeout.Timeout()
	if c.transport != "tcp" {
		if len(c.want) == 0 {
			return
		}
		// Nothing else is final, until a second after it was sent: a
		// retransmission of the same answer is fine, another answer is
		// not (dblreq's INVITE).
		for {
			res, err := s.next(tortureCase{})
			if err != nil {
				return
			}
			if code := statusOf(res); code >= 200 && code != c.want[len(c.want)-1] {
				t.Errorf("%s: another answer came:\n%s", c.why, res)
			}
		}
	}
	switch {
	case c.closed && (readErr == nil || timedOut):
		t.Errorf("%s: the connection was left open (%v)", c.why, readErr)
	case !c.closed && len(c.want) == 0 && !timedOut:
		t.Errorf("%s: the connection was not left waiting: %v", c.why, readErr)
	}
}

// checkFinals compares the final responses that came with those wanted.
func checkFinals(t *testing.T, c tortureCase, finals []string) {
	t.Helper()
	got := make([]int, len(finals))
	for i, res := range finals {
		got[i] = statusOf(res)
	}
	if !slices.Equal(got, c.want) {
		t.Fatalf("%s: answered %v, want %v; first:\n%s", c.why, got, c.want, strings.Join(finals, "\n---\n"))
	}
	for _, s := range c.has {
		if !strings.Contains(finals[0], s) {
			t.Errorf("%s: the %d does not carry %q:\n%s", c.why, got[0], s, finals[0])
		}
	}
}

// statusOf is a response's status code; 0 for anything else.
func statusOf(msg string) int {
	f := strings.Fields(msg[:max(strings.Index(msg, "\r\n"), 0)])
	if len(f) < 2 || !strings.HasPrefix(f[0], "SIP/") {
		return 0
	}
	code, _ := strconv.Atoi(f[1])
	return code
}

// readStreamMessage reads one message from a stream, framed by its
// Content-Length.
func readStreamMessage(r *bufio.Reader) (string, error) {
	var head strings.Builder
	length := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if head.Len() == 0 && strings.TrimSpace(line) == "" {
			continue // keepalive
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
		if name, v, ok := strings.Cut(line, ":"); ok && (strings.EqualFold(strings.TrimSpace(name), "Content-Length") || strings.EqualFold(strings.TrimSpace(name), "l")) {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(r, body); err != nil {
		return "", err
	}
	return head.String() + string(body), nil
}

// topVia finds the top Via's sent-by, through RFC 4475's whitespace and
// folding ("Via  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=…").
var topVia = regexp.MustCompile(`(?im)^(?:via|v)[ \t]*:[ \t\r\n]*SIP[ \t\r\n]*/[ \t\r\n]*[0-9.]+[ \t\r\n]*/[ \t\r\n]*[A-Za-z]+[ \t\r\n]+([^;,\s]+)`)

// viaTo makes the top Via's sent-by addr: a UDP answer goes to the port
// the top Via names (RFC 3261 18.2.2), and only the test's socket may get
// one. The rest of the message is left as it is.
func viaTo(raw []byte, addr string) []byte {
	m := topVia.FindSubmatchIndex(raw)
	if m == nil {
		return raw
	}
	out := append([]byte(nil), raw[:m[2]]...)
	out = append(out, addr...)
	return append(out, raw[m[3]:]...)
}
