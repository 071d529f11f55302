// Package promtest reads a Prometheus /metrics page in tests: it parses
// the page with the Prometheus text parser and checks samples by family
// name and labels.
package promtest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families is a parsed /metrics page, by family name.
type Families map[string]*dto.MetricFamily

// Scrape GETs /metrics from addr and parses it with the Prometheus
// text parser.
func Scrape(t testing.TB, addr string) Families {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("get /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("get /metrics: %s, %v", resp.Status, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// Want finds the sample of family name with the given labels (name, value
// pairs; other labels may be present), checks its value and returns it.
// The value of a histogram is its sample count.
func (m Families) Want(t testing.TB, name string, check func(float64) error, labels ...string) float64 {
	t.Helper()
	fam := m[name]
	if fam == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	for _, s := range fam.Metric {
		if !hasLabels(s, labels) {
			continue
		}
		var v float64
		switch {
		case s.Counter != nil:
			v = s.Counter.GetValue()
		case s.Gauge != nil:
			v = s.Gauge.GetValue()
		case s.Histogram != nil:
			v = float64(s.Histogram.GetSampleCount())
			if v > 0 && s.Histogram.GetSampleSum() <= 0 {
				t.Errorf("%s%v: %v samples summing to %v", name, labels, v, s.Histogram.GetSampleSum())
			}
		default:
			t.Fatalf("%s has type %v", name, fam.GetType())
		}
		if err := check(v); err != nil {
			t.Errorf("%s%v = %v: %v", name, labels, v, err)
		}
		return v
	}
	t.Fatalf("/metrics has no %s with labels %v", name, labels)
	return 0
}

func hasLabels(s *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, l := range s.Label {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Eq checks that a value is want.
func Eq(want float64) func(float64) error {
	return func(v float64) error {
		if v != want {
			return fmt.Errorf("want %v", want)
		}
		return nil
	}
}

// AtLeast checks that a value is at least min.
func AtLeast[N int | float64](min N) func(float64) error {
	return func(v float64) error {
		if v < float64(min) {
			return fmt.Errorf("want at least %v", min)
		}
		return nil
	}
}

// Between checks that a value is in [lo, hi].
func Between(lo, hi float64) func(float64) error {
	return func(v float64) error {
		if v < lo || v > hi {
			return fmt.Errorf("want between %v and %v", lo, hi)
		}
		return nil
	}
}
