package moto

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
)

func TestStart(t *testing.T) {
	endpoint := Start(t)
	client := eventbridge.New(eventbridge.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := client.ListEventBuses(ctx, &eventbridge.ListEventBusesInput{})
	if err != nil {
		t.Fatalf("ListEventBuses on %s: %v; want the default bus", endpoint, err)
	}
	var names []string
	for _, b := range out.EventBuses {
		names = append(names, aws.ToString(b.Name))
	}
	if !slices.Contains(names, "default") {
		t.Errorf("event buses %q; want the account's \"default\" bus among them", names)
	}
}

// recorder is a testing.TB that records how Start ended the test instead
// of ending it.
type recorder struct {
	testing.TB
	skipped, failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Skip(...any)           { r.skipped = true }
func (r *recorder) Skipf(string, ...any)  { r.skipped = true }
func (r *recorder) Fatal(...any)          { r.failed = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

// Without moto_server, Start skips on a developer's machine and fails in
// CI, where a skip would hide a missing install step.
func TestStartMissing(t *testing.T) {
	if testing.Short() {
		t.Skip("Start skips every test under -short, before it looks for moto_server")
	}
	tests := []struct {
		name          string
		ci            string
		skip, failure bool
	}{
		{"developer's machine", "", true, false},
		{"CI", "true", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir())
			t.Setenv("CI", tt.ci)
			r := &recorder{TB: t}
			if endpoint := Start(r); endpoint != "" {
				t.Errorf("Start without moto_server gave endpoint %q; want none", endpoint)
			}
			if r.skipped != tt.skip || r.failed != tt.failure {
				t.Errorf("skipped %v, failed %v; want %v, %v", r.skipped, r.failed, tt.skip, tt.failure)
			}
		})
	}
}
