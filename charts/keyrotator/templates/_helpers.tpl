{{/* _helpers.tpl - names and labels shared by every template of the chart. */}}

{{/* The chart name, or nameOverride. */}}
{{- define "keyrotator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name of the release's objects: fullnameOverride, else <release>-<name>, or
the release name alone when it already contains the chart name. */}}
{{- define "keyrotator.fullname" -}}
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

{{/* chart label value: name-version. */}}
{{- define "keyrotator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels selectors use: they never change across upgrades. */}}
{{- define "keyrotator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keyrotator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{/* The standard labels of every object. */}}
{{- define "keyrotator.labels" -}}
helm.sh/chart: {{ include "keyrotator.chart" . }}
{{ include "keyrotator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: keyrotator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The controller image: image:imageTag, the tag defaulting to appVersion. */}}
{{- define "keyrotator.image" -}}
{{- printf "%s:%s" .Values.image (default .Chart.AppVersion .Values.imageTag) }}
{{- end }}
