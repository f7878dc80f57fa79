package licensing

import (
	"bytes"
	"encoding/json"
)

// License has its own MarshalJSON (the churn limit in force), and a type
// that embeds it would take that method over and print the license alone.
// Each embedder marshals through flatJSON instead: the embedded part and
// its own fields, as one object, in field order.

func flatJSON(parts ...any) ([]byte, error) {
	var out bytes.Buffer
	out.WriteByte('{')
	for _, p := range parts {
		b, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		inner := bytes.TrimSpace(b)
		inner = inner[1 : len(inner)-1] // every part is an object
		if len(inner) == 0 {
			continue
		}
		if out.Len() > 1 {
			out.WriteByte(',')
		}
		out.Write(inner)
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// MarshalJSON: see flatJSON.
func (v LicenseView) MarshalJSON() ([]byte, error) {
	return flatJSON(v.License, struct {
		EffectiveStatus Status `json:"effective_status"`
	}{v.EffectiveStatus})
}

// MarshalJSON: see flatJSON.
func (d LicenseDetail) MarshalJSON() ([]byte, error) {
	type own struct {
		Keys        []IssuedKey  `json:"keys"`
		Activations []Activation `json:"activations"`
		Deliveries  []Delivery   `json:"deliveries"`
		Events      []Event      `json:"last_events"`
	}
	return flatJSON(d.LicenseView, own{d.Keys, d.Activations, d.Deliveries, d.Events})
}

// MarshalJSON: see flatJSON.
func (e Exported) MarshalJSON() ([]byte, error) {
	return flatJSON(e.LicenseView, struct {
		Key string `json:"license_key"`
	}{e.Key})
}
