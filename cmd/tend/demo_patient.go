package main

// patientLink prints a sign-in link to the patient app (/app/) for the
// first story patient, so a tour can log readings, answer a retake request
// and write to the care team as that patient. The token rides in the
// fragment, which the app removes from the address bar at once.
func (d *demoRun) patientLink(sims []*simPatient) {
	for _, p := range sims {
		if p.app == "" {
			continue
		}
		d.out.printf("patient    %s/app/#token=%s", d.base, p.app)
		d.out.printf("           (opens the patient app signed in as %s; best at phone size)", p.name)
		return
	}
}
