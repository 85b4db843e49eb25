"""The query service (`trilha query`): the Events API, the API logs report and its schedules, the console."""
