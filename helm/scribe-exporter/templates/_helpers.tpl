{{/* Names and labels, the prometheus-community way. */}}
{{- define "scribe-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "scribe-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "scribe-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "scribe-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "scribe-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "scribe-exporter.labels" -}}
helm.sh/chart: {{ include "scribe-exporter.chart" . }}
{{ include "scribe-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: scribe-exporter
{{- end }}

{{- define "scribe-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "scribe-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "scribe-exporter.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret holding the keys: the user's, or the one the chart creates. */}}
{{- define "scribe-exporter.secretName" -}}
{{- default (printf "%s-keys" (include "scribe-exporter.fullname" .)) .Values.existingSecret }}
{{- end }}

{{/* The exporter's config.yaml: `config` plus the workspaces, each reading its key file. */}}
{{- define "scribe-exporter.config" -}}
{{- $config := deepCopy .Values.config }}
{{- $workspaces := list }}
{{- range $index, $ws := .Values.workspaces }}
{{- if and (not $.Values.existingSecret) (not $ws.apiKey) }}
{{- fail (printf "workspaces[%d] (%s): set apiKey, or name an existingSecret" $index $ws.name) }}
{{- end }}
{{- $file := printf "/etc/scribe-exporter/keys/%s" (default $ws.name $ws.secretKey) }}
{{- $workspaces = append $workspaces (dict "name" $ws.name "api_key_file" $file) }}
{{- end }}
{{- $_ := set $config "workspaces" $workspaces }}
{{- toYaml $config }}
{{- end }}

{{/* Checksums of the values, not of rendered objects: a chart upgrade alone rolls nothing. */}}
{{- define "scribe-exporter.configChecksum" -}}
{{- $names := list }}
{{- range .Values.workspaces }}{{ $names = append $names (list .name .secretKey) }}{{ end }}
{{- dict "config" .Values.config "workspaces" $names "demo" .Values.demo | toJson | sha256sum }}
{{- end }}

{{- define "scribe-exporter.secretChecksum" -}}
{{- $keys := list }}
{{- range .Values.workspaces }}{{ $keys = append $keys (list .name .apiKey) }}{{ end }}
{{- dict "keys" $keys "existingSecret" .Values.existingSecret | toJson | sha256sum }}
{{- end }}

{{- define "scribe-exporter.hasKeys" -}}
{{- if and (not .Values.demo) .Values.workspaces }}true{{ end }}
{{- end }}
