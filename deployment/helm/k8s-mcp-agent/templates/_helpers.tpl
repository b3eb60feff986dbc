{{/*
Names and labels of the objects this chart renders itself (the operator and its RBAC). The agent's
objects are the operator's: it names them k8s-mcp-agent-<config name> and labels the agent pods
app.kubernetes.io/name=k8s-mcp-agent, which the operator's pods must never carry (the README finds
the agent pod on a node with that selector).
*/}}

{{- define "k8s-mcp-agent.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release> when it already contains the chart name, else <release>-<chart>. */}}
{{- define "k8s-mcp-agent.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 54 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "k8s-mcp-agent.operatorName" -}}
{{- printf "%s-operator" (include "k8s-mcp-agent.fullname" .) }}
{{- end }}

{{- define "k8s-mcp-agent.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "k8s-mcp-agent.name" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{- define "k8s-mcp-agent.operatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "k8s-mcp-agent.name" . }}-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "k8s-mcp-agent.operatorLabels" -}}
{{ include "k8s-mcp-agent.labels" . }}
{{ include "k8s-mcp-agent.operatorSelectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "k8s-mcp-agent.operatorServiceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "k8s-mcp-agent.operatorName" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create=false" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@sha256:… for a digest; the tag defaults to the appVersion. */}}
{{- define "k8s-mcp-agent.operatorImage" -}}
{{- $image := .Values.operator.image }}
{{- $tag := default .Chart.AppVersion $image.tag }}
{{- if hasPrefix "sha256:" $tag }}
{{- printf "%s@%s" $image.repository $tag }}
{{- else }}
{{- printf "%s:%s" $image.repository $tag }}
{{- end }}
{{- end }}

{{/* Leader election is on when asked for, and always with more than one replica. */}}
{{- define "k8s-mcp-agent.leaderElect" -}}
{{- if or .Values.operator.leaderElection.enabled (gt (int .Values.operator.replicas) 1) }}true{{ end }}
{{- end }}

{{/* The agent namespace the operator deploys into (for NOTES.txt). */}}
{{- define "k8s-mcp-agent.agentNamespace" -}}
{{- .Values.namespace.name }}
{{- end }}
