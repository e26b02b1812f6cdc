// Package apispec holds the REST API to its OpenAPI description
// (api/openapi.json) in tests: the description loaded and validated with
// kin-openapi, every answer a test gets checked against it (status,
// content type, body schema) by a transport, the operations that were
// exercised, and a chi router's routes compared with the described ones.
//
// The checks are stricter than the description: an object schema that
// names its properties is closed here (additionalProperties false), so a
// field the server sends and the description leaves out fails. The
// description itself stays open, so that clients keep working when a
// field is added.
package apispec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/go-chi/chi/v5"
)

// Spec is the loaded description and what one test saw against it.
type Spec struct {
	doc    *openapi3.T
	router routers.Router

	mu   sync.Mutex
	seen map[string]map[int]bool // operationId → statuses answered
}

var loaded struct {
	mu     sync.Mutex
	doc    *openapi3.T
	router routers.Router
	raw    []byte
}

// Load returns the description raw (api.Description()), validated, for one
// test. It is parsed once per test binary.
func Load(tb testing.TB, raw []byte) *Spec {
	tb.Helper()
	loaded.mu.Lock()
	defer loaded.mu.Unlock()
	if loaded.doc == nil || !bytes.Equal(loaded.raw, raw) {
		doc, router, err := parse(raw)
		if err != nil {
			tb.Fatalf("api/openapi.json: %v", err)
		}
		loaded.doc, loaded.router, loaded.raw = doc, router, raw
	}
	return &Spec{doc: loaded.doc, router: loaded.router, seen: map[string]map[int]bool{}}
}

func parse(raw []byte) (*openapi3.T, routers.Router, error) {
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, nil, err
	}
	ids := map[string]string{}
	for _, op := range operations(doc) {
		if op.ID == "" {
			return nil, nil, fmt.Errorf("%s %s has no operationId", op.Method, op.Path)
		}
		if other, ok := ids[op.ID]; ok {
			return nil, nil, fmt.Errorf("operationId %s is both %s and %s %s", op.ID, other, op.Method, op.Path)
		}
		ids[op.ID] = op.Method + " " + op.Path
	}
	closeObjects(doc)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, nil, err
	}
	return doc, router, nil
}

// closeObjects forbids properties a schema does not name, in every object
// schema that names its properties and says nothing of others.
func closeObjects(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var walk func(ref *openapi3.SchemaRef)
	walk = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil &&
			len(s.AllOf) == 0 && len(s.AnyOf) == 0 && len(s.OneOf) == 0 {
			closed := false
			s.AdditionalProperties.Has = &closed
		}
		for _, p := range s.Properties {
			walk(p)
		}
		walk(s.Items)
		walk(s.AdditionalProperties.Schema)
		for _, list := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
			for _, x := range list {
				walk(x)
			}
		}
	}
	for _, s := range doc.Components.Schemas {
		walk(s)
	}
	for _, item := range doc.Webhooks {
		if item.Post != nil && item.Post.RequestBody != nil {
			for _, mt := range item.Post.RequestBody.Value.Content {
				walk(mt.Schema)
			}
		}
	}
	for _, op := range operations(doc) {
		for _, r := range op.op.Responses.Map() {
			if r.Value != nil {
				for _, mt := range r.Value.Content {
					walk(mt.Schema)
				}
			}
		}
	}
}

// Operation is one described operation.
type Operation struct {
	Method, Path, ID string
	op               *openapi3.Operation
}

func operations(doc *openapi3.T) []Operation {
	var ops []Operation
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops = append(ops, Operation{Method: method, Path: path, ID: op.OperationID, op: op})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].Path+ops[i].Method < ops[j].Path+ops[j].Method })
	return ops
}

// Operations lists every described operation.
func (s *Spec) Operations() []Operation { return operations(s.doc) }

// Doc is the loaded description.
func (s *Spec) Doc() *openapi3.T { return s.doc }

// ErrNotDescribed is Check's error for a request no described operation
// takes: a web page, or a path that is not the API's. Routes and
// CompareRoutes find the routes left out of the description.
var ErrNotDescribed = errors.New("no operation of the description takes it")

// Check validates one answer against the description of the request's
// operation: the status is one it declares, the content type one it
// declares for that status, and a JSON body matches its schema. It
// records the operation and status as seen.
func (s *Spec) Check(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w (%w)", req.Method, req.URL.Path, ErrNotDescribed, err)
	}
	s.mu.Lock()
	if s.seen[route.Operation.OperationID] == nil {
		s.seen[route.Operation.OperationID] = map[int]bool{}
	}
	s.seen[route.Operation.OperationID][status] = true
	s.mu.Unlock()
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	ct := header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt != "application/json" {
		// A binary or text body: its type is checked here, its bytes by the
		// test that asked for them.
		r := route.Operation.Responses.Status(status)
		if r == nil || r.Value == nil {
			return fmt.Errorf("%s %s answered %d, which %s does not declare", req.Method, req.URL.Path, status, route.Operation.OperationID)
		}
		if r.Value.Content.Get(mt) == nil {
			return fmt.Errorf("%s %s answered %d with %s, which %s does not declare", req.Method, req.URL.Path, status, mt, route.Operation.OperationID)
		}
		opts.ExcludeResponseBody = true
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                opts,
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		return fmt.Errorf("%s %s (%s) answered %d against its description: %s\nbody: %.600s",
			req.Method, req.URL.Path, route.Operation.OperationID, status, reasons(err), body)
	}
	return nil
}

// reasons says what is wrong, one line for each schema error, without the
// schema and value a SchemaError prints (the body follows).
func reasons(err error) string {
	var multi openapi3.MultiError
	if errors.As(err, &multi) {
		lines := make([]string, len(multi))
		for i, e := range multi {
			lines[i] = reasons(e)
		}
		return strings.Join(lines, "; ")
	}
	var s *openapi3.SchemaError
	if errors.As(err, &s) {
		return "at /" + strings.Join(s.JSONPointer(), "/") + ": " + s.Reason
	}
	return err.Error()
}

// Transport checks every answer that passes through next, reporting a
// mismatch as an error of tb (next nil: http.DefaultTransport).
func (s *Spec) Transport(tb testing.TB, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return checking{spec: s, tb: tb, next: next}
}

// Client is an HTTP client whose answers are checked (cookies kept when
// jar is not nil).
func (s *Spec) Client(tb testing.TB, jar http.CookieJar) *http.Client {
	return &http.Client{Transport: s.Transport(tb, nil), Jar: jar}
}

type checking struct {
	spec *Spec
	tb   testing.TB
	next http.RoundTripper
}

func (c checking) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := c.spec.Check(req, resp.StatusCode, resp.Header, body); err != nil && !errors.Is(err, ErrNotDescribed) {
		c.tb.Errorf("%v", err) // Errorf, not Fatalf: the client may run on any goroutine
	}
	return resp, nil
}

// CheckWebhook validates a webhook delivery a receiver got against the
// description's webhooks section: its event is described, its headers
// are there, and its body matches the event's schema.
func (s *Spec) CheckWebhook(header http.Header, body []byte) error {
	event := header.Get("Switchboard-Event")
	item := s.doc.Webhooks[event]
	if item == nil || item.Post == nil {
		return fmt.Errorf("webhook event %q is not described", event)
	}
	for _, p := range item.Post.Parameters {
		if p.Value.In == openapi3.ParameterInHeader && p.Value.Required && header.Get(p.Value.Name) == "" {
			return fmt.Errorf("webhook %s without its %s header", event, p.Value.Name)
		}
	}
	mt := item.Post.RequestBody.Value.Content.Get("application/json")
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("webhook %s: %w", event, err)
	}
	if err := mt.Schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
		return fmt.Errorf("webhook %s against its description: %s\nbody: %.600s", event, reasons(err), body)
	}
	return nil
}

// Seen returns the statuses each operation answered, by operationId.
func (s *Spec) Seen() map[string][]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]int{}
	for id, codes := range s.seen {
		for c := range codes {
			out[id] = append(out[id], c)
		}
		sort.Ints(out[id])
	}
	return out
}

// pages are the routes that serve the embedded web pages, not the API.
func page(route string) bool {
	switch route {
	case "/", "/console", "/widget", "/password":
		return true
	}
	return strings.HasSuffix(route, ".js") || strings.HasSuffix(route, ".css") || strings.HasPrefix(route, "/favicon.")
}

// Routes lists what a chi router serves, as "METHOD /pattern", leaving
// out the web pages.
func Routes(h http.Handler) ([]string, error) {
	routes, ok := h.(chi.Routes)
	if !ok {
		return nil, errors.New("the handler is not a chi router")
	}
	var served []string
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if route != "/" {
			route = strings.TrimSuffix(route, "/")
		}
		if !page(route) {
			served = append(served, method+" "+route)
		}
		return nil
	})
	sort.Strings(served)
	return served, err
}

// CompareRoutes returns the routes served but not described and the
// operations described but not served.
func (s *Spec) CompareRoutes(served []string) (undescribed, unserved []string) {
	described := map[string]bool{}
	for _, op := range s.Operations() {
		described[op.Method+" "+op.Path] = true
	}
	isServed := map[string]bool{}
	for _, r := range served {
		isServed[r] = true
		if !described[r] {
			undescribed = append(undescribed, r)
		}
	}
	for r := range described {
		if !isServed[r] {
			unserved = append(unserved, r)
		}
	}
	sort.Strings(undescribed)
	sort.Strings(unserved)
	return undescribed, unserved
}
