package apiclient

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/api"
)

// The schemas the overlay maps to the root's types name exactly the JSON
// fields those types have: a field added to a type and not described (or
// described and not in the type) fails here, whatever values a test sent.
// (QualitySample is not mapped: the API adds each sample's MOS.)
func TestVocabularyTypesMatchTheirSchemas(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.Description())
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]any{
		"Call": sb.Call{}, "MediaStats": sb.MediaStats{}, "CallEvent": sb.CallEvent{}, "Consent": sb.Consent{},
		"Recording": sb.Recording{}, "AccessGrant": sb.AccessGrant{}, "AuditEntry": sb.AuditEntry{}, "User": sb.User{},
		"APIKey": sb.APIKey{}, "SIPMessage": sb.SIPMessage{}, "Webhook": sb.Webhook{},
		"WebhookDelivery": sb.WebhookDelivery{}, "SubjectExport": sb.SubjectExport{}, "ErasureReceipt": sb.ErasureReceipt{},
		"Route": sb.Route{}, "Number": sb.Number{},
	}
	overlay, err := os.ReadFile("vocabulary.overlay.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var mapped []string
	for _, m := range regexp.MustCompile(`x-go-type: sb\.(\w+)`).FindAllSubmatch(overlay, -1) {
		mapped = append(mapped, string(m[1]))
	}
	for name := range types {
		if !slices.Contains(mapped, name) {
			t.Errorf("%s is checked here but not mapped in vocabulary.overlay.yaml", name)
		}
	}
	for _, name := range mapped {
		v, ok := types[name]
		if !ok {
			t.Errorf("vocabulary.overlay.yaml maps %s, which this test does not check", name)
			continue
		}
		schema := doc.Components.Schemas[name]
		if schema == nil {
			t.Errorf("no schema %s", name)
			continue
		}
		fields := jsonFields(reflect.TypeOf(v))
		for _, f := range fields {
			if _, ok := schema.Value.Properties[f]; !ok {
				t.Errorf("sb.%s has %q, which the schema %s does not name", name, f, name)
			}
		}
		for p := range schema.Value.Properties {
			if !slices.Contains(fields, p) {
				t.Errorf("the schema %s names %q, which sb.%s does not have", name, p, name)
			}
		}
	}
}

// jsonFields lists the names encoding/json writes for a struct type.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			out = append(out, jsonFields(ft)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}
