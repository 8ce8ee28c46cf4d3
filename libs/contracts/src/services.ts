/**
 * The services FastGPU is made of, as the platform starts them: `ServiceDefinition.name`, and
 * the `intake+scheduler+…` name a process logs under. A closed set: a service joins it here.
 */
export const ServiceName = { intake: 'intake', scheduler: 'scheduler', metering: 'metering', billing: 'billing', reliability: 'reliability' } as const;
export type ServiceName = (typeof ServiceName)[keyof typeof ServiceName];
