package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
)

// history builds events of the given types; attrs fills in the attributes some kinds are counted by.
func history(types ...enumspb.EventType) []*historypb.HistoryEvent {
	out := make([]*historypb.HistoryEvent, len(types))
	for i, t := range types {
		out[i] = &historypb.HistoryEvent{EventId: int64(i + 1), EventType: t}
	}
	return out
}

func upsert(names ...string) *historypb.HistoryEvent {
	fields := map[string]*commonpb.Payload{}
	for _, n := range names {
		fields[n] = &commonpb.Payload{Data: []byte(`"x"`)}
	}
	return &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
		Attributes: &historypb.HistoryEvent_UpsertWorkflowSearchAttributesEventAttributes{
			UpsertWorkflowSearchAttributesEventAttributes: &historypb.UpsertWorkflowSearchAttributesEventAttributes{
				SearchAttributes: &commonpb.SearchAttributes{IndexedFields: fields}}}}
}

func marker(task int64) *historypb.HistoryEvent {
	return &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_MARKER_RECORDED,
		Attributes: &historypb.HistoryEvent_MarkerRecordedEventAttributes{
			MarkerRecordedEventAttributes: &historypb.MarkerRecordedEventAttributes{WorkflowTaskCompletedEventId: task}}}
}

func activityStarted(attempt int32) *historypb.HistoryEvent {
	return &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED,
		Attributes: &historypb.HistoryEvent_ActivityTaskStartedEventAttributes{
			ActivityTaskStartedEventAttributes: &historypb.ActivityTaskStartedEventAttributes{Attempt: attempt}}}
}

func taskFailed(cause enumspb.WorkflowTaskFailedCause) *historypb.HistoryEvent {
	return &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED,
		Attributes: &historypb.HistoryEvent_WorkflowTaskFailedEventAttributes{
			WorkflowTaskFailedEventAttributes: &historypb.WorkflowTaskFailedEventAttributes{Cause: cause}}}
}

// TestCountActionsOfTheMinimalShape is the minimal workflow's history as the server writes it: started by
// update-with-start, one activity, three signals, completed: 1 + 1 + 1 + 3 = 6 Actions; workflow tasks and
// completions are free.
func TestCountActionsOfTheMinimalShape(t *testing.T) {
	h := history(
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED, enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
		enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED, enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED, enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
	)
	got := CountActions(h)
	if want := (ActionCount{Start: 1, Update: 1, Signal: 3, Activity: 1}); got != want || got.Total() != 6 {
		t.Fatalf("CountActions = %+v (total %v), want %+v (6)", got, got.Total(), want)
	}
}

func TestCountActionsByThePublishedRules(t *testing.T) {
	h := []*historypb.HistoryEvent{
		{EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED},
		{EventType: enumspb.EVENT_TYPE_TIMER_STARTED},
		{EventType: enumspb.EVENT_TYPE_TIMER_CANCELED}, // free
		{EventType: enumspb.EVENT_TYPE_TIMER_STARTED},
		{EventType: enumspb.EVENT_TYPE_TIMER_FIRED},  // free
		upsert("TransferStatus", "ConnectSessionID"), // one command, one Action, however many attributes
		upsert("TemporalChangeVersion"),              // GetVersion's: free
		upsert("TemporalChangeVersion", "TransferStatus"),
		marker(4), marker(4), marker(4), // one workflow task's markers: one Action
		marker(9),
		{EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED},
		activityStarted(3), // two retries
		{EventType: enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED},
		{EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED},
		{EventType: enumspb.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED}, // billed in the signaled history
		taskFailed(enumspb.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW),
		taskFailed(enumspb.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR), // free
		{EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED},
		{EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED}, // free
	}
	want := ActionCount{Start: 1, Update: 1, Activity: 3, Timer: 2, Upsert: 2, Marker: 2, Other: 4}
	if got := CountActions(h); got != want {
		t.Fatalf("CountActions = %+v, want %+v", got, want)
	}
	if CountActions(nil).Total() != 0 {
		t.Fatal("an empty history costs nothing")
	}
}

func TestActionsAgainstTheMinimalWorkflowAndPrice(t *testing.T) {
	minimalHistory := history(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
		enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
	deposit := append(append([]*historypb.HistoryEvent{}, minimalHistory...), upsert("TransferStatus"), upsert("TransferStatus"),
		&historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_TIMER_STARTED})
	depositWithRetry := append(append([]*historypb.HistoryEvent{}, deposit...), activityStarted(2))
	minimal := NewPathActions("minimal workflow", "ceiling", "minimal-1", [][]*historypb.HistoryEvent{minimalHistory})
	a := NewActions(&minimal, NewPathActions("deposit", "ours", "deposit-1", [][]*historypb.HistoryEvent{deposit, depositWithRetry}))
	if len(a.Paths) != 2 || a.Paths[0].Total != 6 || a.Paths[0].USDPer1000 != 0.30 {
		t.Fatalf("minimal path %+v, want 6 Actions, $0.30 per 1,000", a.Paths[0])
	}
	d := a.Paths[1]
	if d.Total != 9.5 || d.Actions.Activity != 1.5 || d.VsMinimal != 9.5/6 || d.Histories != 2 || d.Events != 9.5 {
		t.Fatalf("deposit path %+v, want the average of 9 and 10 Actions", d)
	}
	if d.USDPer1000 != 9.5*0.05 {
		t.Fatalf("deposit costs $%v per 1,000, want $%v at $50 per million", d.USDPer1000, 9.5*0.05)
	}

	r := sample()
	r.Actions = a
	var md bytes.Buffer
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"#### Cost per transfer: Temporal Cloud Actions",
		"| minimal workflow | 1 | 1 | 3 | 1 | 0 | 0 | 0 | 0 | 6 |  | 6 | $0.300 |",
		"| deposit | 1 | 1 | 3 | 1.50 | 1 | 2 | 0 | 0 | 9.50 | 1.58x | 9.50 | $0.475 |",
		"$50 per million",
		"- CPU per transfer in the same run: 60.00 ms, 1.20x the minimal workflow's 50.00 ms",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q\n%s", want, md.String())
		}
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Actions == nil || back.Actions.Paths[1].Total != 9.5 ||
		back.Actions.PriceUSDPerMillion != 50 {
		t.Fatalf("JSON round trip of the actions: %+v, %v", back.Actions, err)
	}
}
