// Regenerates k8s-schema.json, the strict JSON Schema that validate_manifests.py checks
// deploy/k8s against. Not run by the tests: the schema is committed.
//
// Source: the models of the official JavaScript client, generated from the Kubernetes OpenAPI
// document (every field of every type with its type and whether it is required):
//   mkdir /tmp/k8s-models && cd /tmp/k8s-models && npm install @kubernetes/client-node@1.0.0
//   cp $CLISC/tests/e2e/k8s/make_schema.mjs . && node make_schema.mjs > \
//     $CLISC/tests/e2e/k8s/k8s-schema.json
// (an ES module resolves its imports from its own folder, hence the copy beside node_modules).
// Unlike the upstream OpenAPI schemas, every object schema here forbids unknown fields
// (additionalProperties: false), so a misspelt field fails validation, as kubectl's strict
// server-side field validation would.
import * as k8s from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

// The kinds deploy/k8s uses (and a few it may grow into), by apiVersion and kind.
const roots = {
  'v1/ConfigMap': 'V1ConfigMap',
  'v1/Secret': 'V1Secret',
  'v1/Service': 'V1Service',
  'v1/PersistentVolumeClaim': 'V1PersistentVolumeClaim',
  'v1/ServiceAccount': 'V1ServiceAccount',
  'apps/v1/Deployment': 'V1Deployment',
  'apps/v1/StatefulSet': 'V1StatefulSet',
  'batch/v1/Job': 'V1Job',
  'policy/v1/PodDisruptionBudget': 'V1PodDisruptionBudget',
};

// Resource quantities: the generated models type them as strings; Kubernetes also takes numbers.
const quantityFields = new Set([
  'V1ResourceRequirements.limits', 'V1ResourceRequirements.requests',
  'V1VolumeResourceRequirements.limits', 'V1VolumeResourceRequirements.requests',
  'V1EmptyDirVolumeSource.sizeLimit', 'V1PersistentVolumeClaimStatus.capacity',
  'V1PersistentVolumeClaimStatus.allocatedResources', 'V1PodSpec.overhead',
]);
const quantity = { type: ['string', 'number'] };

const require = createRequire(import.meta.url);
const modelsDir = join(dirname(require.resolve('@kubernetes/client-node')), 'gen', 'models');

// Required fields: the generated .d.ts declares them without '?'.
function requiredFields(className) {
  let text;
  try {
    text = readFileSync(join(modelsDir, `${className}.d.ts`), 'utf8');
  } catch {
    return [];
  }
  const required = [];
  for (const match of text.matchAll(/^\s+'([A-Za-z0-9_$-]+)': /gm)) required.push(match[1]);
  return required;
}

const definitions = {};
const pending = [];

function typeSchema(type, format) {
  let m;
  if ((m = type.match(/^Array<(.+)>$/))) return { type: 'array', items: typeSchema(m[1], format) };
  if ((m = type.match(/^\{ \[key: string\]: (.+); \}$/))) {
    return { type: 'object', additionalProperties: typeSchema(m[1], format) };
  }
  switch (type) {
    case 'string': return { type: 'string' };
    case 'Date': return { type: 'string' };
    case 'boolean': return { type: 'boolean' };
    case 'number': return { type: format === 'double' ? 'number' : 'integer' };
    case 'IntOrString': return { type: ['integer', 'string'] };
    case 'any': case 'object': return {};
  }
  if (k8s[type] && k8s[type].attributeTypeMap) {
    if (!(type in definitions)) {
      definitions[type] = null;
      pending.push(type);
    }
    return { $ref: `#/definitions/${type}` };
  }
  throw new Error(`unknown type ${type}`);
}

function defineClass(className) {
  const properties = {};
  for (const attribute of k8s[className].attributeTypeMap) {
    const key = `${className}.${attribute.baseName}`;
    let schema = typeSchema(attribute.type, attribute.format);
    if (quantityFields.has(key)) {
      schema = schema.type === 'object' ? { type: 'object', additionalProperties: quantity }
                                        : quantity;
    }
    properties[attribute.baseName] = schema;
  }
  const schema = { type: 'object', properties, additionalProperties: false };
  const required = requiredFields(className).filter((name) => name in properties);
  if (required.length) schema.required = required;
  definitions[className] = schema;
}

const kinds = {};
for (const [key, className] of Object.entries(roots)) {
  kinds[key] = typeSchema(className, '').$ref;
}
while (pending.length) defineClass(pending.pop());

// apiVersion and kind must be the ones the root names.
for (const [key, ref] of Object.entries(kinds)) {
  const className = ref.split('/').pop();
  const slash = key.lastIndexOf('/');
  const root = definitions[className];
  root.properties.apiVersion = { const: key.slice(0, slash) };
  root.properties.kind = { const: key.slice(slash + 1) };
  root.required = [...new Set(['apiVersion', 'kind', 'metadata', ...(root.required || [])])];
}

const sorted = Object.fromEntries(Object.keys(definitions).sort().map((k) => [k, definitions[k]]));
process.stdout.write(JSON.stringify({
  $schema: 'http://json-schema.org/draft-07/schema#',
  description: 'Strict schemas of Kubernetes v1.32 objects (generated by make_schema.mjs)',
  kinds,
  definitions: sorted,
}, null, 1) + '\n');
