{{/* Labels every object of this release carries. */}}
{{- define "fastgpu.labels" -}}
app.kubernetes.io/name: fastgpu
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The Secret holding DATABASE_URL under key `uri`: CloudNativePG's app secret, or the user's. */}}
{{- define "fastgpu.databaseSecret" -}}
{{- if .Values.postgres.cnpg.enabled -}}
{{ .Release.Name }}-postgres-app
{{- else -}}
{{ required "postgres.databaseSecret is required when postgres.cnpg.enabled is false" .Values.postgres.databaseSecret }}
{{- end }}
{{- end }}

{{/* The NATS URL, with the services' password from the environment ($(FASTGPU_NATS_PASSWORD)). */}}
{{- define "fastgpu.natsUrl" -}}
{{- if .Values.natsUrl -}}
{{ .Values.natsUrl }}
{{- else -}}
nats://fastgpu:$(FASTGPU_NATS_PASSWORD)@{{ .Release.Name }}-nats:4222
{{- end }}
{{- end }}

{{/* The environment of every FastGPU container. */}}
{{- define "fastgpu.env" -}}
- name: FASTGPU_NATS_PASSWORD
  valueFrom:
    secretKeyRef: { name: {{ .Values.secrets.name }}, key: FASTGPU_NATS_PASSWORD }
- name: FASTGPU_ADMIN_KEY
  valueFrom:
    secretKeyRef: { name: {{ .Values.secrets.name }}, key: FASTGPU_ADMIN_KEY }
- name: DATABASE_URL
  valueFrom:
    secretKeyRef: { name: {{ include "fastgpu.databaseSecret" . }}, key: uri }
- name: NATS_URL
  value: {{ include "fastgpu.natsUrl" . | quote }}
- name: HOST
  value: "0.0.0.0"
- name: PORT
  value: "8080"
{{- range $name, $value := .Values.env }}
{{- if $value }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}
{{- end }}
