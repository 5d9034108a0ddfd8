package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keygate/keygate/internal/moto"
)

// testEvents are n events of varied types, ids evt_00 on.
func testEvents(n int) []Event {
	types := []string{KeyCreated, KeyUpdated, KeyRevoked, UsageThreshold, KeyLeaked}
	created := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	evs := make([]Event, n)
	for i := range evs {
		evs[i] = Event{
			ID: fmt.Sprintf("evt_%02d", i), Type: types[i%len(types)], Project: "proj",
			CreatedAt: created.Add(time.Duration(i) * time.Second),
			Data:      Marshal(map[string]any{"key": map[string]string{"id": fmt.Sprintf("key_%d", i), "name": "<b>Prod</b> & co"}}),
		}
	}
	return evs
}

// Publish through moto's EventBridge: a rule on the bus matching keygate's
// source sends each event to an SQS queue, which the test reads. moto
// delivers to SQS targets synchronously, in PutEvents; real EventBridge
// would also need a queue policy letting events.amazonaws.com send.
func TestEventBridgePublishMoto(t *testing.T) {
	endpoint := moto.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	creds := credentials.NewStaticCredentialsProvider("test", "test", "")
	eb := eventbridge.New(eventbridge.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(endpoint)})
	q := sqs.New(sqs.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(endpoint)})

	const bus = "keygate-test"
	if _, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(bus)}); err != nil {
		t.Fatalf("create the bus: %v", err)
	}
	queue, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("keygate-events")})
	if err != nil {
		t.Fatalf("create the queue: %v", err)
	}
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: queue.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatalf("read the queue's ARN: %v", err)
	}
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("keygate-to-queue"), EventBusName: aws.String(bus),
		EventPattern: aws.String(`{"source":["keygate"]}`)}); err != nil {
		t.Fatalf("put the rule: %v", err)
	}
	targets, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("keygate-to-queue"), EventBusName: aws.String(bus),
		Targets: []ebtypes.Target{{Id: aws.String("queue"), Arn: aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)])}}})
	if err != nil || targets.FailedEntryCount != 0 {
		t.Fatalf("put the rule's target: %v, %d failed", err, targets.FailedEntryCount)
	}

	// An event of another source on the same bus: the rule must leave it
	// out, which shows the queue holds what the rule matched.
	if _, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
		EventBusName: aws.String(bus), Source: aws.String("other"), DetailType: aws.String(KeyCreated), Detail: aws.String(`{"id":"evt_other"}`),
	}}}); err != nil {
		t.Fatalf("put an event of another source: %v", err)
	}
	evs := testEvents(23) // three calls: 10, 10, 3
	if err := NewEventBridge(eb, bus).Publish(ctx, evs); err != nil {
		t.Fatalf("Publish of %d events: %v", len(evs), err)
	}

	want := map[string]Event{}
	for _, e := range evs {
		want[e.ID] = e
	}
	got := map[string]int{}
	for deadline := time.Now().Add(30 * time.Second); len(got) < len(evs) && time.Now().Before(deadline); {
		for _, m := range receive(ctx, t, q, queue.QueueUrl) {
			var envelope struct {
				Source     string          `json:"source"`
				DetailType string          `json:"detail-type"`
				Detail     json.RawMessage `json:"detail"`
			}
			if err := json.Unmarshal([]byte(m), &envelope); err != nil {
				t.Fatalf("message %s: %v; want EventBridge's envelope", m, err)
			}
			var e Event
			if err := json.Unmarshal(envelope.Detail, &e); err != nil {
				t.Fatalf("detail %s: %v; want an event", envelope.Detail, err)
			}
			got[e.ID]++
			w, ok := want[e.ID]
			if !ok {
				t.Errorf("the queue got %s; want only the %d events published", m, len(evs))
				continue
			}
			if envelope.Source != Source || envelope.DetailType != w.Type {
				t.Errorf("%s: source %q, detail-type %q; want %q, %q", e.ID, envelope.Source, envelope.DetailType, Source, w.Type)
			}
			if !sameJSON(t, envelope.Detail, Marshal(w)) {
				t.Errorf("%s: detail %s; want the event, %s", e.ID, envelope.Detail, Marshal(w))
			}
		}
	}
	// Anything left would be a duplicate.
	for _, m := range receive(ctx, t, q, queue.QueueUrl) {
		t.Errorf("the queue got %s after all %d events; want each once", m, len(evs))
	}
	for _, e := range evs {
		if got[e.ID] != 1 {
			t.Errorf("%s arrived %d times; want once", e.ID, got[e.ID])
		}
	}
}

// receive reads and deletes what the queue has, waiting a second at most.
func receive(ctx context.Context, t *testing.T, q *sqs.Client, url *string) []string {
	t.Helper()
	out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	if err != nil {
		t.Fatalf("receive from the queue: %v", err)
	}
	var bodies []string
	for _, m := range out.Messages {
		bodies = append(bodies, aws.ToString(m.Body))
		if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: url, ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatalf("delete a message: %v", err)
		}
	}
	return bodies
}

// sameJSON reports whether a and b encode the same value.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// fakeEventBridge records PutEvents calls and fails the entries fail says
// to, by call (1 on) and event id.
type fakeEventBridge struct {
	mu    sync.Mutex
	calls [][]ebtypes.PutEventsRequestEntry
	fail  func(call int, id string) string // an error code, or "" to accept
	err   error                            // the error of every call, if set
}

func (f *fakeEventBridge) PutEvents(_ context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, in.Entries)
	if f.err != nil {
		return nil, f.err
	}
	out := &eventbridge.PutEventsOutput{}
	for _, e := range in.Entries {
		var ev Event
		_ = json.Unmarshal([]byte(aws.ToString(e.Detail)), &ev)
		if code := f.fail(len(f.calls), ev.ID); code != "" {
			out.FailedEntryCount++
			out.Entries = append(out.Entries, ebtypes.PutEventsResultEntry{ErrorCode: aws.String(code), ErrorMessage: aws.String("refused by the fake")})
			continue
		}
		out.Entries = append(out.Entries, ebtypes.PutEventsResultEntry{EventId: aws.String("eb-" + ev.ID)})
	}
	return out, nil
}

// ids are the event ids of each call's entries.
func (f *fakeEventBridge) ids() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out [][]string
	for _, call := range f.calls {
		var ids []string
		for _, e := range call {
			var ev Event
			_ = json.Unmarshal([]byte(aws.ToString(e.Detail)), &ev)
			ids = append(ids, ev.ID)
		}
		out = append(out, ids)
	}
	return out
}

func accept(int, string) string { return "" }

// Publish puts at most 10 entries a call, each the event as detail, its
// type as detail type, on the bus named.
func TestEventBridgePublishBatches(t *testing.T) {
	f := &fakeEventBridge{fail: accept}
	evs := testEvents(23)
	if err := NewEventBridge(f, "bus-1").Publish(context.Background(), evs); err != nil {
		t.Fatalf("Publish: %v; want nil", err)
	}
	var sizes []int
	for _, c := range f.calls {
		sizes = append(sizes, len(c))
	}
	if !reflect.DeepEqual(sizes, []int{10, 10, 3}) {
		t.Fatalf("PutEvents calls of %v entries; want [10 10 3]", sizes)
	}
	i := 0
	for _, call := range f.calls {
		for _, e := range call {
			w := evs[i]
			i++
			if aws.ToString(e.EventBusName) != "bus-1" || aws.ToString(e.Source) != Source || aws.ToString(e.DetailType) != w.Type ||
				aws.ToString(e.Detail) != string(Marshal(w)) || !aws.ToTime(e.Time).Equal(w.CreatedAt) {
				t.Errorf("entry %d {bus %s, source %s, detail-type %s, time %s, detail %s}; want {bus-1, %s, %s, %s, %s}", i-1,
					aws.ToString(e.EventBusName), aws.ToString(e.Source), aws.ToString(e.DetailType), aws.ToTime(e.Time), aws.ToString(e.Detail),
					Source, w.Type, w.CreatedAt, Marshal(w))
			}
		}
	}
	if err := NewEventBridge(f, "bus-1").Publish(context.Background(), nil); err != nil || len(f.calls) != 3 {
		t.Errorf("Publish of no events: %v, %d calls in all; want nil and no call", err, len(f.calls))
	}
}

func TestEventBridgePublishRetries(t *testing.T) {
	failure := errors.New("connection reset")
	tests := []struct {
		name    string
		fail    func(call int, id string) string
		err     error
		calls   [][]string // event ids of each call
		wantErr string     // part of the error; "" for nil
	}{
		{"all accepted", accept, nil, [][]string{{"evt_00", "evt_01", "evt_02"}}, ""},
		{"a throttled entry is put again, alone", func(call int, id string) string {
			if call == 1 && id == "evt_01" {
				return "ThrottlingException"
			}
			return ""
		}, nil, [][]string{{"evt_00", "evt_01", "evt_02"}, {"evt_01"}}, ""},
		{"two entries refused twice", func(call int, id string) string {
			if call <= 2 && id != "evt_01" {
				return "InternalException"
			}
			return ""
		}, nil, [][]string{{"evt_00", "evt_01", "evt_02"}, {"evt_00", "evt_02"}, {"evt_00", "evt_02"}}, ""},
		{"an entry refused every time", func(_ int, id string) string {
			if id == "evt_02" {
				return "InternalException"
			}
			return ""
		}, nil, [][]string{{"evt_00", "evt_01", "evt_02"}, {"evt_02"}, {"evt_02"}, {"evt_02"}}, "1 entries refused, last InternalException"},
		// A call that fails as a whole is the SDK's to retry: Publish
		// fails, and Lambda delivers the batch again.
		{"the call fails", accept, failure, [][]string{{"evt_00", "evt_01", "evt_02"}}, "connection reset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeEventBridge{fail: tt.fail, err: tt.err}
			err := NewEventBridge(f, "bus-1").Publish(context.Background(), testEvents(3))
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Publish = %v; want an error saying %q (nil if empty)", err, tt.wantErr)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("Publish = %v; want it to wrap the call's error %v", err, tt.err)
			}
			if got := f.ids(); !reflect.DeepEqual(got, tt.calls) {
				t.Errorf("PutEvents calls with events %v; want %v", got, tt.calls)
			}
			if len(tt.calls) > putAttempts {
				t.Errorf("the test expects %d calls; Publish makes at most %d", len(tt.calls), putAttempts)
			}
		})
	}
}

// A retry's wait ends with the context.
func TestEventBridgePublishCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeEventBridge{fail: func(int, string) string { cancel(); return "ThrottlingException" }}
	err := NewEventBridge(f, "bus-1").Publish(ctx, testEvents(1))
	if !errors.Is(err, context.Canceled) || len(f.calls) != 1 {
		t.Errorf("Publish with the context canceled during the first call = %v after %d calls; want context.Canceled after 1", err, len(f.calls))
	}
}
