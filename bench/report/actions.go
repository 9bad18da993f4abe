package report

import (
	"fmt"
	"math"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
)

// Temporal Cloud's published price of an Action, the Pay-As-You-Go rate of the first 5 million Actions a month
// (https://docs.temporal.io/cloud/pricing, "Action pricing", read 2026-11-30): $50 per million, falling with
// volume to $25 per million from 100M to 200M a month.
const (
	ActionPriceUSDPerMillion = 50.0
	ActionPriceSource        = "Temporal Cloud Pay-As-You-Go, first 5M Actions a month: $50 per million " +
		"(docs.temporal.io/cloud/pricing, read 2026-11-30; $25 per million at 100M-200M a month)"
)

// ActionCount is the billable Temporal Cloud Actions one workflow history shows, by kind, counted as
// https://docs.temporal.io/cloud/actions maps history events to Actions (read 2026-11-30):
//
//   - Start: WorkflowExecutionStarted (a client start, update-with-start's start, a child's or continue-as-new's
//     run); search attributes given at start are free.
//   - Update: WorkflowExecutionUpdateAccepted (update-with-start's update counts beside its start). A rejected
//     update also costs one but is not in history.
//   - Signal: WorkflowExecutionSignaled, from a client or another workflow.
//   - Activity: ActivityTaskScheduled, plus one per retry (ActivityTaskStarted's attempt - 1).
//   - Timer: TimerStarted, including the SDK's implicit timers (AwaitWithTimeout).
//   - Upsert: UpsertWorkflowSearchAttributes, one per command whatever it sets; an upsert of
//     TemporalChangeVersion alone (what workflow.GetVersion writes) is free.
//   - Marker: every MarkerRecorded of one workflow task together count as one (local activities, side effects
//     and, as the page words it, any RecordMarker: GetVersion's markers too).
//   - Other: child workflow start initiated (2), workflow options updated, Nexus operation scheduled or cancel
//     requested, a reset (WorkflowTaskFailed with cause reset), continue-as-new (the next run's start).
//
// Not in history, so not counted here: queries (one each, e.g. `starter status`), activity heartbeats that reach
// the server, rejected updates.
type ActionCount struct {
	Start    float64 `json:"start"`
	Update   float64 `json:"update"`
	Signal   float64 `json:"signal"`
	Activity float64 `json:"activity"`
	Timer    float64 `json:"timer"`
	Upsert   float64 `json:"upsert"`
	Marker   float64 `json:"marker"`
	Other    float64 `json:"other,omitempty"`
}

// Total is every Action counted.
func (a ActionCount) Total() float64 {
	return a.Start + a.Update + a.Signal + a.Activity + a.Timer + a.Upsert + a.Marker + a.Other
}

func (a ActionCount) add(b ActionCount) ActionCount {
	return ActionCount{Start: a.Start + b.Start, Update: a.Update + b.Update, Signal: a.Signal + b.Signal,
		Activity: a.Activity + b.Activity, Timer: a.Timer + b.Timer, Upsert: a.Upsert + b.Upsert,
		Marker: a.Marker + b.Marker, Other: a.Other + b.Other}
}

func (a ActionCount) div(n float64) ActionCount {
	return ActionCount{Start: a.Start / n, Update: a.Update / n, Signal: a.Signal / n, Activity: a.Activity / n,
		Timer: a.Timer / n, Upsert: a.Upsert / n, Marker: a.Marker / n, Other: a.Other / n}
}

// changeVersionAttribute is the search attribute workflow.GetVersion maintains; Cloud does not bill its upserts.
const changeVersionAttribute = "TemporalChangeVersion"

// CountActions counts the billable Actions in one run's history (see ActionCount).
func CountActions(events []*historypb.HistoryEvent) ActionCount {
	var a ActionCount
	markerTask := int64(-1) // the workflow task whose markers were last counted
	for _, ev := range events {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			a.Start++
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			a.Update++
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			a.Signal++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			a.Activity++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			if n := ev.GetActivityTaskStartedEventAttributes().GetAttempt(); n > 1 {
				a.Activity += float64(n - 1)
			}
		case enumspb.EVENT_TYPE_TIMER_STARTED:
			a.Timer++
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			if !onlyChangeVersion(ev.GetUpsertWorkflowSearchAttributesEventAttributes()) {
				a.Upsert++
			}
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			if task := ev.GetMarkerRecordedEventAttributes().GetWorkflowTaskCompletedEventId(); task != markerTask {
				a.Marker++
				markerTask = task
			}
		case enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
			a.Other += 2
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED,
			enumspb.EVENT_TYPE_NEXUS_OPERATION_SCHEDULED,
			enumspb.EVENT_TYPE_NEXUS_OPERATION_CANCEL_REQUESTED,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
			a.Other++
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED:
			if ev.GetWorkflowTaskFailedEventAttributes().GetCause() == enumspb.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW {
				a.Other++
			}
		}
	}
	return a
}

func onlyChangeVersion(attrs *historypb.UpsertWorkflowSearchAttributesEventAttributes) bool {
	fields := attrs.GetSearchAttributes().GetIndexedFields()
	if len(fields) == 0 {
		return false
	}
	for name := range fields { // only checks membership: the order does not matter
		if name != changeVersionAttribute {
			return false
		}
	}
	return true
}

// PathActions is the Actions of one kind of transfer, read from the histories the run produced.
type PathActions struct {
	Path       string      `json:"path"`        // e.g. "deposit"
	What       string      `json:"what"`        // how the run drove it
	WorkflowID string      `json:"workflow_id"` // one of the histories read, to look at in the UI
	Histories  int         `json:"histories"`   // histories averaged
	Events     float64     `json:"history_events"`
	Actions    ActionCount `json:"actions"`
	Total      float64     `json:"total"`
	// VsMinimal is Total over the minimal workflow's; 0 without it.
	VsMinimal  float64 `json:"vs_minimal,omitempty"`
	USDPer1000 float64 `json:"usd_per_1000_transfers"`
}

// NewPathActions averages the Actions of histories of the same path (they are normally identical).
func NewPathActions(path, what, workflowID string, histories [][]*historypb.HistoryEvent) PathActions {
	p := PathActions{Path: path, What: what, WorkflowID: workflowID, Histories: len(histories)}
	if len(histories) == 0 {
		return p
	}
	var sum ActionCount
	events := 0
	for _, h := range histories { // whole numbers summed, then divided once: 3 stays 3, not 3.0000000000000004
		sum = sum.add(CountActions(h))
		events += len(h)
	}
	n := float64(len(histories))
	p.Actions, p.Events = sum.div(n), float64(events)/n
	p.Total = p.Actions.Total()
	p.USDPer1000 = p.Total * 1000 * ActionPriceUSDPerMillion / 1e6
	return p
}

// Actions is the cost per transfer in Temporal Cloud Actions, each path beside the minimal workflow's.
type Actions struct {
	PriceUSDPerMillion float64       `json:"price_usd_per_million_actions"`
	PriceSource        string        `json:"price_source"`
	Paths              []PathActions `json:"paths"` // the first is the minimal workflow when it ran
}

// NewActions relates every path to minimal (the ceiling's workflow) when it is given.
func NewActions(minimal *PathActions, paths ...PathActions) *Actions {
	a := &Actions{PriceUSDPerMillion: ActionPriceUSDPerMillion, PriceSource: ActionPriceSource}
	if minimal != nil {
		a.Paths = append(a.Paths, *minimal)
	}
	for _, p := range paths {
		if minimal != nil && minimal.Total > 0 {
			p.VsMinimal = p.Total / minimal.Total
		}
		a.Paths = append(a.Paths, p)
	}
	return a
}

func (a *Actions) table(b *strings.Builder, transfers *Comparison) {
	b.WriteString("#### Cost per transfer: Temporal Cloud Actions, counted in the run's histories\n\n")
	b.WriteString("| path | start | update | signal | activity | timer | upsert | marker | other | actions | vs minimal | history events | USD per 1,000 |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, p := range a.Paths {
		vs := ""
		if p.VsMinimal > 0 {
			vs = fmt.Sprintf("%.2fx", p.VsMinimal)
		}
		c := p.Actions
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | $%.3f |\n", p.Path, num(c.Start),
			num(c.Update), num(c.Signal), num(c.Activity), num(c.Timer), num(c.Upsert), num(c.Marker), num(c.Other),
			num(p.Total), vs, num(p.Events), p.USDPer1000)
	}
	b.WriteString("\n")
	for _, p := range a.Paths {
		fmt.Fprintf(b, "- %s (%d histories, e.g. `%s`): %s\n", p.Path, p.Histories, p.WorkflowID, p.What)
	}
	fmt.Fprintf(b, "- price: %s\n", a.PriceSource)
	if t := transfers; t != nil && t.CPURatio > 0 {
		fmt.Fprintf(b, "- CPU per transfer in the same run: %.2f ms, %.2fx the minimal workflow's %.2f ms\n",
			t.Ours.CPUMsPerOp, t.CPURatio, t.Ceiling.CPUMsPerOp)
	}
	b.WriteString("\n")
}

// num prints a count without decimals when it is whole.
func num(v float64) string {
	if r := math.Round(v); math.Abs(v-r) < 1e-9 {
		v = r
	}
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.2f", v)
}
